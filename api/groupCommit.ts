// Group commit for one API process: requests of one key (a job) that arrive while that key's
// transaction runs wait and go together into the next one, so N concurrent callers cost about
// one transaction per round trip instead of N. The first request of an idle key opens a batch
// that starts on the next turn of the event loop.
// This is only a queue of pending requests in memory: nothing here decides anything another
// replica must know, and every answer comes from what the store committed.

/** One caller's outcome of a batch: its own answer, or its own error. */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface GroupCommitOptions<T> {
  /** A batch stops taking requests once their weights reach this (a lone heavier one still runs). */
  maxWeight: number;
  /** Weight of one request, e.g. the shards it names. */
  weight: (item: T) => number;
}

interface Pending<T, R> {
  item: T;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<T, R> {
  private readonly queues = new Map<string, Pending<T, R>[]>();

  /**
   * `run` does one batch of one key in one transaction and answers each item, in order. When it
   * throws, nothing of the batch was committed (the transaction rolled back): each item then runs
   * again alone, so a request that makes the transaction fail fails only its own caller, and an
   * unreachable store fails each caller with its error (a 5xx the clients retry).
   */
  constructor(
    private readonly run: (key: string, items: T[]) => Promise<Settled<R>[]>,
    private readonly opts: GroupCommitOptions<T>,
  ) {}

  submit(key: string, item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const queue = this.queues.get(key);
      if (queue) {
        queue.push({ item, resolve, reject });
        return;
      }
      // The batch starts on the next turn of the event loop, so requests that arrived in this turn
      // (parsed from the same socket reads) join it. A SQLite transaction runs to its end without
      // yielding to I/O, so without this pause every request would commit alone.
      this.queues.set(key, [{ item, resolve, reject }]);
      setImmediate(() => void this.drain(key));
    });
  }

  /** Requests waiting for a batch (all keys); for metrics and tests. */
  get waiting(): number {
    let n = 0;
    for (const queue of this.queues.values()) n += queue.length;
    return n;
  }

  /** Runs the key's queued requests batch by batch, until none is left. */
  private async drain(key: string): Promise<void> {
    for (;;) {
      const queue = this.queues.get(key)!;
      if (queue.length === 0) {
        this.queues.delete(key);
        return;
      }
      await this.runBatch(key, this.take(queue));
    }
  }

  /** The oldest requests of `queue` up to maxWeight (at least one), removed from it. */
  private take(queue: Pending<T, R>[]): Pending<T, R>[] {
    let weight = 0;
    let n = 0;
    while (n < queue.length) {
      weight += this.opts.weight(queue[n]!.item);
      if (n > 0 && weight > this.opts.maxWeight) break;
      n += 1;
    }
    return queue.splice(0, n);
  }

  private async runBatch(key: string, batch: Pending<T, R>[]): Promise<void> {
    let outcomes: Settled<R>[];
    try {
      outcomes = await this.run(key, batch.map((p) => p.item));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      // Nothing was committed: each request alone, so one that fails the transaction fails alone.
      await Promise.all(batch.map((p) => this.runBatch(key, [p])));
      return;
    }
    batch.forEach((p, i) => {
      const outcome = outcomes[i];
      if (!outcome) p.reject(new Error(`group commit answered ${outcomes.length} of ${batch.length} requests`));
      else if (outcome.ok) p.resolve(outcome.value);
      else p.reject(outcome.error);
    });
  }
}
