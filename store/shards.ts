// Data shards: each epoch of a job's dataset split into index ranges that trainers lease,
// finish and report. Accounting is exactly-once: a shard counts as done the first time only.
import type { ExpressionBuilder } from 'kysely';
import { isDuplicateKey, Repository, toNumber, type Trx } from './repository.ts';
import type { Database, ShardRow } from './schema.ts';

export type Shard = ShardRow;

export const SHARD_QUEUED = 'queued';
export const SHARD_LEASED = 'leased';
export const SHARD_DONE = 'done';
/** Failed too often; never leased again. */
export const SHARD_POISON = 'poison';
export const SHARD_SKIPPED = 'skipped';

export interface ShardKey {
  jobId: string;
  epoch: number;
  shardIndex: number;
}

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

/** The lease owner name of one training process: node, incarnation, rank and round. */
export function leaseOwner(t: { node: number; incarnation: number; rank: number; round: number }): string {
  return `${nodeLeasePrefix(t.node, t.incarnation)}${t.rank}g${t.round}`;
}

/** The prefix every lease owner name of one node incarnation starts with. */
export function nodeLeasePrefix(node: number, incarnation: number): string {
  return `n${node}i${incarnation}r`;
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

/** WHERE (epoch, shardIndex) is one of `keys`, within one job. */
function oneOf(eb: ExpressionBuilder<Database, 'shards'>, keys: { epoch: number; shardIndex: number }[]) {
  return eb.or(keys.map((k) => eb.and([eb('epoch', '=', k.epoch), eb('shardIndex', '=', k.shardIndex)])));
}

export class ShardsRepository extends Repository {
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

  /**
   * Leases up to `count` shards to `owner` until now + leaseMs: queued ones and ones whose lease
   * expired, lowest epoch and index first. Concurrent callers get disjoint shards: MySQL skips
   * rows another transaction has locked (FOR UPDATE SKIP LOCKED); SQLite runs one write
   * transaction at a time (BEGIN IMMEDIATE).
   */
  async leaseNext(
    jobId: string,
    owner: string,
    count: number,
    now: number,
    leaseMs: number,
    trx?: Trx,
  ): Promise<Shard[]> {
    if (count <= 0) return [];
    return this.inContendedTransaction(trx, async (t) => {
      const picked = await t
        .selectFrom('shards')
        .select(['epoch', 'shardIndex'])
        .where('jobId', '=', jobId)
        .where((eb) =>
          eb.or([
            eb('status', '=', SHARD_QUEUED),
            eb.and([eb('status', '=', SHARD_LEASED), eb('leaseExpiresAt', '<=', now)]),
          ]),
        )
        .orderBy('epoch')
        .orderBy('shardIndex')
        .limit(count)
        .$if(this.dialect === 'mysql', (qb) => qb.forUpdate().skipLocked())
        .execute();
      if (picked.length === 0) return [];
      await t
        .updateTable('shards')
        .set((eb) => ({
          status: SHARD_LEASED,
          leaseOwner: owner,
          leaseExpiresAt: now + leaseMs,
          attempts: eb('attempts', '+', 1),
        }))
        .where('jobId', '=', jobId)
        .where((eb) => oneOf(eb, picked))
        .execute();
      return t
        .selectFrom('shards')
        .selectAll()
        .where('jobId', '=', jobId)
        .where((eb) => oneOf(eb, picked))
        .orderBy('epoch')
        .orderBy('shardIndex')
        .execute();
    });
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
    const result = await this.inContendedTransaction(trx, (t) =>
      t
        .updateTable('shards')
        .set({ status: SHARD_DONE, doneAt: this.now(), leaseExpiresAt: null })
        .where('jobId', '=', key.jobId)
        .where('epoch', '=', key.epoch)
        .where('shardIndex', '=', key.shardIndex)
        .where('status', 'in', [SHARD_QUEUED, SHARD_LEASED])
        .executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }

  /** Takes a not-yet-done shard out of the queue for good; false if it was done or gone. */
  async markPoison(key: ShardKey, trx?: Trx): Promise<boolean> {
    const result = await this.inContendedTransaction(trx, (t) =>
      t
        .updateTable('shards')
        .set({ status: SHARD_POISON, leaseExpiresAt: null })
        .where('jobId', '=', key.jobId)
        .where('epoch', '=', key.epoch)
        .where('shardIndex', '=', key.shardIndex)
        .where('status', 'in', [SHARD_QUEUED, SHARD_LEASED])
        .executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }

  /**
   * Marks a shard `owner` leased as done at training step `step`. True only the first time and
   * only for the lease holder: a late report from a lease that was rewound or taken over by
   * another trainer does not count.
   */
  async complete(key: ShardKey, owner: string, step: number, trx?: Trx): Promise<boolean> {
    const result = await this.inContendedTransaction(trx, (t) =>
      t
        .updateTable('shards')
        .set({ status: SHARD_DONE, doneAt: this.now(), doneStep: step, leaseExpiresAt: null })
        .where('jobId', '=', key.jobId)
        .where('epoch', '=', key.epoch)
        .where('shardIndex', '=', key.shardIndex)
        .where('status', '=', SHARD_LEASED)
        .where('leaseOwner', '=', owner)
        .executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }

  /** Puts a shard `owner` holds back in the queue (the trainer gives it back); false otherwise. */
  async giveBack(key: ShardKey, owner: string, trx?: Trx): Promise<boolean> {
    const result = await this.inContendedTransaction(trx, (t) =>
      t
        .updateTable('shards')
        .set({ status: SHARD_QUEUED, leaseOwner: null, leaseExpiresAt: null })
        .where('jobId', '=', key.jobId)
        .where('epoch', '=', key.epoch)
        .where('shardIndex', '=', key.shardIndex)
        .where('status', '=', SHARD_LEASED)
        .where('leaseOwner', '=', owner)
        .executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }

  /** Takes a not-yet-done shard out of the queue for good as skipped; false if it was done or gone. */
  async markSkipped(key: ShardKey, trx?: Trx): Promise<boolean> {
    const result = await this.inContendedTransaction(trx, (t) =>
      t
        .updateTable('shards')
        .set({ status: SHARD_SKIPPED, leaseExpiresAt: null })
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
    const result = await this.inContendedTransaction(trx, (t) =>
      t
        .updateTable('shards')
        .set({ status: SHARD_QUEUED, leaseOwner: null, leaseExpiresAt: null })
        .where('jobId', '=', jobId)
        .where('status', '=', SHARD_LEASED)
        .where('leaseOwner', 'like', `${prefix}%`)
        .executeTakeFirst(),
    );
    return Number(result.numUpdatedRows);
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
    const result = await this.inContendedTransaction(trx, (t) =>
      t
        .updateTable('shards')
        .set({ status: SHARD_QUEUED, leaseOwner: null, leaseExpiresAt: null })
        .where('jobId', '=', jobId)
        .where('status', '=', SHARD_LEASED)
        .where('leaseOwner', '=', owner)
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
