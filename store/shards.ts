// Data shards: each epoch of a job's dataset split into index ranges that trainers lease,
// finish and report. Accounting is exactly-once: a shard counts as done the first time only.
// Leasing and completing live in store/shardLeasing.ts; this file adds the epoch's life around them.
import { isDuplicateKey, toNumber, type Trx } from './repository.ts';
import { SHARD_DONE, SHARD_LEASED, SHARD_POISON, SHARD_QUEUED, SHARD_SKIPPED, ShardLeasing, type Shard, type ShardKey } from './shardLeasing.ts';

export {
  SHARD_DONE,
  SHARD_LEASED,
  SHARD_POISON,
  SHARD_QUEUED,
  SHARD_SKIPPED,
  leaseOwner,
  nodeLeasePrefix,
  type Shard,
  type ShardCompletion,
  type ShardGrant,
  type ShardKey,
} from './shardLeasing.ts';

export interface ShardCounts {
  total: number;
  queued: number;
  inFlight: number;
  done: number;
  poison: number;
  skipped: number;
}

export interface ShardProgress extends ShardCounts {
  epochs: (ShardCounts & { epoch: number })[];
}

/** Rows per INSERT when creating an epoch; keeps MySQL well under its placeholder limit. */
const INSERT_CHUNK = 500;

function emptyCounts(): ShardCounts {
  return { total: 0, queued: 0, inFlight: 0, done: 0, poison: 0, skipped: 0 };
}

function addCount(counts: ShardCounts, status: string, n: number): void {
  counts.total += n;
  if (status === SHARD_QUEUED) counts.queued += n;
  else if (status === SHARD_LEASED) counts.inFlight += n;
  else if (status === SHARD_DONE) counts.done += n;
  else if (status === SHARD_POISON) counts.poison += n;
  else if (status === SHARD_SKIPPED) counts.skipped += n;
}

export class ShardsRepository extends ShardLeasing {
  /**
   * Creates the epoch's shards, numbered 0.. in the order given, all queued. False (nothing
   * written) when the epoch already has shards, so a retried call is harmless.
   */
  async createEpoch(
    jobId: string,
    epoch: number,
    ranges: { startIndex: number; endIndex: number }[],
    trx?: Trx,
  ): Promise<boolean> {
    try {
      return await this.inTransaction(trx, async (t) => {
        const existing = await t
          .selectFrom('shards')
          .select('shardIndex')
          .where('jobId', '=', jobId)
          .where('epoch', '=', epoch)
          .limit(1)
          .executeTakeFirst();
        if (existing) return false;
        const rows = ranges.map((r, shardIndex) => ({
          jobId,
          epoch,
          shardIndex,
          startIndex: r.startIndex,
          endIndex: r.endIndex,
          status: SHARD_QUEUED,
        }));
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
          await t.insertInto('shards').values(rows.slice(i, i + INSERT_CHUNK)).execute();
        }
        return true;
      });
    } catch (err) {
      // A concurrent caller created the same epoch first.
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  async get(key: ShardKey, trx?: Trx): Promise<Shard | undefined> {
    return this.q(trx)
      .selectFrom('shards')
      .selectAll()
      .where('jobId', '=', key.jobId)
      .where('epoch', '=', key.epoch)
      .where('shardIndex', '=', key.shardIndex)
      .executeTakeFirst();
  }

  /** Pushes the expiry of every lease `owner` holds in the job to `expiresAt`; returns how many. */
  async extendLeases(jobId: string, owner: string, expiresAt: number, trx?: Trx): Promise<number> {
    const result = await this.inContendedTransaction(trx, (t) =>
      t
        .updateTable('shards')
        .set({ leaseExpiresAt: expiresAt })
        .where('jobId', '=', jobId)
        .where('status', '=', SHARD_LEASED)
        .where('leaseOwner', '=', owner)
        .executeTakeFirst(),
    );
    return Number(result.numUpdatedRows);
  }

  /**
   * Marks the shard done. True only the first time: a repeated or late report (say, from a
   * node whose lease had expired) does not count the shard again.
   */
  async markDone(key: ShardKey, trx?: Trx): Promise<boolean> {
    return this.settle(key, { status: SHARD_DONE, doneAt: this.now() }, trx);
  }

  /** Takes a not-yet-done shard out of the queue for good; false if it was done or gone. */
  async markPoison(key: ShardKey, trx?: Trx): Promise<boolean> {
    return this.settle(key, { status: SHARD_POISON }, trx);
  }

  /** Takes a not-yet-done shard out of the queue for good as skipped; false if it was done or gone. */
  async markSkipped(key: ShardKey, trx?: Trx): Promise<boolean> {
    return this.settle(key, { status: SHARD_SKIPPED }, trx);
  }

  /** Gives a queued or leased shard its final status (its lease ends); false if it had one already. */
  private async settle(key: ShardKey, outcome: { status: string; doneAt?: number }, trx?: Trx): Promise<boolean> {
    const result = await this.inContendedTransaction(trx, (t) =>
      t
        .updateTable('shards')
        .set({ ...outcome, leaseExpiresAt: null })
        .where('jobId', '=', key.jobId)
        .where('epoch', '=', key.epoch)
        .where('shardIndex', '=', key.shardIndex)
        .where('status', 'in', [SHARD_QUEUED, SHARD_LEASED])
        .executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }

  /** Returns every lease whose owner starts with `prefix` to the queue (a node died); how many. */
  async releaseByPrefix(jobId: string, prefix: string, trx?: Trx): Promise<number> {
    // LIKE wildcards would widen the match; owner names Rover makes never contain them.
    if (/[%_\\]/.test(prefix)) throw new Error(`lease owner prefix ${JSON.stringify(prefix)} contains a LIKE wildcard`);
    return this.requeue(jobId, 'like', `${prefix}%`, trx);
  }

  /**
   * Rewinds the ledger to training step `step`: every lease and every shard done after that
   * step goes back to the queue, so a job resumed from the checkpoint at `step` sees exactly the
   * data after it. Returns how many shards were requeued.
   */
  async rewind(jobId: string, step: number, trx?: Trx): Promise<number> {
    const result = await this.inContendedTransaction(trx, (t) =>
      t
        .updateTable('shards')
        .set({ status: SHARD_QUEUED, leaseOwner: null, leaseExpiresAt: null, doneAt: null, doneStep: null })
        .where('jobId', '=', jobId)
        .where((eb) =>
          eb.or([eb('status', '=', SHARD_LEASED), eb.and([eb('status', '=', SHARD_DONE), eb('doneStep', '>', step)])]),
        )
        .executeTakeFirst(),
    );
    return Number(result.numUpdatedRows);
  }

  /** Shards done at or before `step`: the ledger position a checkpoint at that step carries. */
  async countDoneThrough(jobId: string, step: number, trx?: Trx): Promise<number> {
    const row = await this.q(trx)
      .selectFrom('shards')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('jobId', '=', jobId)
      .where('status', '=', SHARD_DONE)
      .where('doneStep', '<=', step)
      .executeTakeFirst();
    return toNumber(row?.n);
  }

  /** Forgets the job's shards (a new run under the same name). */
  async deleteByJob(jobId: string, trx?: Trx): Promise<void> {
    await this.q(trx).deleteFrom('shards').where('jobId', '=', jobId).execute();
  }

  /** Returns every lease `owner` holds in the job to the queue (its node died); how many. */
  async release(jobId: string, owner: string, trx?: Trx): Promise<number> {
    return this.requeue(jobId, '=', owner, trx);
  }

  /** Returns the job's leases whose owner matches (`=` a name, `like` a pattern) to the queue; how many. */
  private async requeue(jobId: string, match: '=' | 'like', owner: string, trx?: Trx): Promise<number> {
    const result = await this.inContendedTransaction(trx, (t) =>
      t
        .updateTable('shards')
        .set({ status: SHARD_QUEUED, leaseOwner: null, leaseExpiresAt: null })
        .where('jobId', '=', jobId)
        .where('status', '=', SHARD_LEASED)
        .where('leaseOwner', match, owner)
        .executeTakeFirst(),
    );
    return Number(result.numUpdatedRows);
  }

  /** Shard counts by status for the job, overall and per epoch (ascending). */
  async progress(jobId: string, trx?: Trx): Promise<ShardProgress> {
    const rows = await this.q(trx)
      .selectFrom('shards')
      .select((eb) => ['epoch', 'status', eb.fn.countAll().as('n')])
      .where('jobId', '=', jobId)
      .groupBy(['epoch', 'status'])
      .orderBy('epoch')
      .execute();
    const overall: ShardProgress = { ...emptyCounts(), epochs: [] };
    for (const row of rows) {
      let epoch = overall.epochs.find((e) => e.epoch === row.epoch);
      if (!epoch) {
        epoch = { epoch: row.epoch, ...emptyCounts() };
        overall.epochs.push(epoch);
      }
      const n = toNumber(row.n);
      addCount(epoch, row.status, n);
      addCount(overall, row.status, n);
    }
    return overall;
  }
}
