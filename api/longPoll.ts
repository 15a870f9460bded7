// Long polls: an HTTP request held until what its caller waits for happens, its wait runs out,
// its client goes or the server closes. The API stays stateless: nothing is pushed between
// replicas, so a held request learns of a change made by another replica by reading the store
// again, every POLL_MIN_MS–POLL_MAX_MS (jittered). The requests of one process that wait for
// the same thing (the same `key`: one rendezvous round, one job's configuration) share that read,
// so a thousand agents waiting on one round cost this replica a few O(1) reads a second, not a
// thousand, and no HTTP round trips at all. A change this process makes itself (a join that
// closes the round) wakes its own waiters at once (`nudge`). A waiting request does not count
// against the in-flight limit (api/overload.ts).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { setWaiting } from './overload.ts';

/** The held request re-reads the store this often: a uniform draw in [min, max) per read. */
export const POLL_MIN_MS = 250;
export const POLL_MAX_MS = 500;
/** Waiters woken per turn of the event loop when one read satisfies many. */
const WAKE_BATCH = 200;
/** Longest any long poll may ask to wait; below the agent's per-attempt timeout (agent/apiClient.ts). */
export const MAX_WAIT_MS = 30_000;

interface Waiter {
  ready: (value: unknown) => boolean;
  /** Ends the wait; with the value read that satisfied `ready`, if that is why. */
  wake: (value?: { read: unknown }) => void;
}

interface Watched {
  key: string;
  read: () => Promise<unknown>;
  waiters: Set<Waiter>;
  timer: NodeJS.Timeout | undefined;
  reading: boolean;
  /** A nudge came while a read ran: read again right after it. */
  again: boolean;
}

export interface WaitFor<T> {
  /** Names what is read: every waiter with this key in the process shares one read per interval. */
  key: string;
  /** O(1) store work: the row(s) whose change the caller waits for. */
  read: () => Promise<T>;
  /** Whether the value read is worth answering (the round left 'open', the version moved on). */
  ready: (value: T) => boolean;
  waitMs: number;
}

export class LongPolls {
  private readonly watched = new Map<string, Watched>();
  private closed = false;

  constructor(private readonly random: () => number = Math.random) {}

  /**
   * Ends every wait when `app` begins to close, so a held request does not hold up its shutdown;
   * its answer then closes its connection, which would otherwise keep the server open until the
   * keep-alive timeout (72 s in Fastify) when the answer comes after the server stopped listening.
   */
  install(app: FastifyInstance): this {
    app.addHook('preClose', async () => this.close());
    app.addHook('onSend', async (_request, reply) => {
      if (this.closed) reply.header('connection', 'close');
    });
    return this;
  }

  /**
   * Resolves when `ready` holds for a shared read (with that value), or with undefined when
   * `waitMs` passed, the client went, the server began to close or a read failed; never rejects.
   * Without a value the caller answers from its own fresh read. Not counted in flight meanwhile.
   */
  async wait<T>(request: FastifyRequest, w: WaitFor<T>): Promise<T | undefined> {
    // The connection, not the request stream: a request whose body was read (a POST) is a
    // destroyed stream by then, its client still waiting.
    const socket = request.raw.socket;
    if (this.closed || w.waitMs <= 0 || socket.destroyed) return undefined;
    const entry = this.entry(w.key, w.read);
    setWaiting(request, true);
    try {
      return await new Promise<T | undefined>((resolve) => {
        const done = (value?: { read: unknown }) => {
          clearTimeout(deadline);
          socket.off('close', gone);
          entry.waiters.delete(waiter);
          if (entry.waiters.size === 0) this.forget(entry);
          resolve(value?.read as T | undefined);
        };
        const waiter: Waiter = { ready: w.ready as (value: unknown) => boolean, wake: done };
        const deadline = setTimeout(() => done(), w.waitMs);
        const gone = () => done();
        socket.once('close', gone);
        entry.waiters.add(waiter);
      });
    } finally {
      setWaiting(request, false);
    }
  }

  /** Something behind `key` changed in this process: read it now rather than at the next tick. */
  nudge(key: string): void {
    const entry = this.watched.get(key);
    if (!entry) return;
    if (entry.reading) {
      entry.again = true;
      return;
    }
    clearTimeout(entry.timer);
    void this.tick(entry);
  }

  /** Ends every wait now; later waits return at once. */
  close(): void {
    this.closed = true;
    for (const entry of [...this.watched.values()]) for (const waiter of [...entry.waiters]) waiter.wake();
  }

  /** Keys watched now (tests: none once every wait ended, so no timer is left). */
  get size(): number {
    return this.watched.size;
  }

  private entry(key: string, read: () => Promise<unknown>): Watched {
    let entry = this.watched.get(key);
    if (!entry) {
      entry = { key, read, waiters: new Set(), timer: undefined, reading: false, again: false };
      this.watched.set(key, entry);
      this.schedule(entry);
    }
    return entry;
  }

  private forget(entry: Watched): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    if (this.watched.get(entry.key) === entry) this.watched.delete(entry.key);
  }

  private schedule(entry: Watched): void {
    const delay = POLL_MIN_MS + Math.floor(this.random() * (POLL_MAX_MS - POLL_MIN_MS));
    entry.timer = setTimeout(() => void this.tick(entry), delay);
  }

  /**
   * One shared read; wakes the waiters it satisfies (all of them if it failed). A nudge meanwhile
   * (`reading` until the waking is done) makes it read again right after, never a second chain.
   */
  private async tick(entry: Watched): Promise<void> {
    entry.timer = undefined;
    entry.reading = true;
    entry.again = false;
    let read: { value: unknown } | undefined;
    try {
      read = { value: await entry.read() };
    } catch {
      read = undefined;
    }
    // In batches, letting other requests in between: a thousand agents' answers to one round's
    // closing would otherwise hold the event loop for their whole time (api/overload.ts sheds then).
    const waiters = [...entry.waiters];
    for (let i = 0; i < waiters.length; i++) {
      if (i > 0 && i % WAKE_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
      const waiter = waiters[i]!;
      if (!entry.waiters.has(waiter)) continue; // its wait ended meanwhile
      if (!read) waiter.wake();
      else if (waiter.ready(read.value)) waiter.wake({ read: read.value });
    }
    entry.reading = false;
    // Still watched (waiters left, not forgotten meanwhile): the next read.
    if (entry.waiters.size === 0 || this.watched.get(entry.key) !== entry) return;
    if (entry.again) void this.tick(entry);
    else this.schedule(entry);
  }
}
