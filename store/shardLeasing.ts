// The lease path of the shards table: picking leasable shards, handing them out, taking them
// back done, in statements sized for a batch of trainers (api/shardBatch.ts). Every write is a
// compare-and-set on the row, so exactly-once holds whoever runs it and however often.
import { sql } from 'kysely';
import { Repository, type Trx } from './repository.ts';
import type { ShardRow } from './schema.ts';

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

/** The lease owner name of one training process: node, incarnation, rank and round. */
export function leaseOwner(t: { node: number; incarnation: number; rank: number; round: number }): string {
  return `${nodeLeasePrefix(t.node, t.incarnation)}${t.rank}g${t.round}`;
}

/** The prefix every lease owner name of one node incarnation starts with. */
export function nodeLeasePrefix(node: number, incarnation: number): string {
  return `n${node}i${incarnation}r`;
}

/** Keys per statement: IN lists and CASE arms stay far below MySQL's placeholder limit. */
const KEY_CHUNK = 500;

/**
 * `items` grouped by epoch (ascending) in chunks of KEY_CHUNK: each group becomes one statement
 * `epoch = ? AND shard_index IN (…)`, which both dialects answer by primary-key seeks. (An OR of
 * (epoch, shard_index) pairs made SQLite scan the whole epoch.)
 */
function byEpoch<T extends { epoch: number; shardIndex: number }>(items: T[]): { epoch: number; items: T[] }[] {
  const epochs = [...new Set(items.map((i) => i.epoch))].sort((a, b) => a - b);
  const groups: { epoch: number; items: T[] }[] = [];
  for (const epoch of epochs) {
    const all = items.filter((i) => i.epoch === epoch);
    for (let i = 0; i < all.length; i += KEY_CHUNK) groups.push({ epoch, items: all.slice(i, i + KEY_CHUNK) });
  }
  return groups;
}

/** `CASE shard_index WHEN … THEN … END` over one epoch's items, or the plain value when all agree. */
function perShard<T extends { shardIndex: number }, V extends string | number>(items: T[], value: (item: T) => V) {
  const first = value(items[0]!);
  if (items.every((i) => value(i) === first)) return sql<V>`${first}`;
  const arms = items.map((i) => sql`when ${i.shardIndex} then ${value(i)}`);
  return sql<V>`case ${sql.ref('shardIndex')} ${sql.join(arms, sql` `)} end`;
}

/** One shard handed to one lease owner in a batch. */
export interface ShardGrant {
  epoch: number;
  shardIndex: number;
  owner: string;
}

/** One shard a lease owner reports done at a training step. */
export interface ShardCompletion extends ShardGrant {
  step: number;
}

/** The shards repository's lease path (store/shards.ts adds the rest). */
export abstract class ShardLeasing extends Repository {
  /**
   * The index a raw query over shards must use (FORCE INDEX on MySQL, INDEXED BY on SQLite):
   * MySQL's planner prefers the primary key for a job's rows in (epoch, shard_index) order and
   * then walks past every done shard. Only the constant names of this file's indexes go here.
   */
  private usingIndex(index: 'shards_lease_idx' | 'shards_expiry_idx') {
    return sql.raw(this.dialect === 'mysql' ? `force index (${index})` : `indexed by ${index}`);
  }

  /**
   * Leases up to `count` shards to `owner` until now + leaseMs: queued ones and ones whose lease
   * expired, lowest epoch and index first (pickLeasable, then grantLeases).
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
      const picked = await this.pickLeasable(jobId, count, now, t);
      if (picked.length === 0) return [];
      const granted = await this.grantLeases(jobId, picked.map((s) => ({ ...s, owner })), now, now + leaseMs, t);
      if (granted !== picked.length) throw new Error(`shards of job ${jobId} changed while locked: leased ${granted} of ${picked.length}`);
      return picked.map((s) => ({ ...s, status: SHARD_LEASED, leaseOwner: owner, leaseExpiresAt: now + leaseMs, attempts: s.attempts + 1 }));
    });
  }

  /**
   * Up to `limit` shards that may be leased now, lowest epoch and index first: queued ones and
   * leased ones whose lease expired. Reads only those rows: each kind is one range of an index
   * (queued by (status, epoch, shard_index), expired by (status, lease_expires_at)), named in the
   * query because MySQL's planner otherwise walks the primary key past every done shard. On MySQL
   * the rows come locked and rows another transaction holds are skipped (FOR UPDATE SKIP LOCKED),
   * so concurrent callers get disjoint shards; SQLite runs one write transaction at a time.
   * Call it inside a transaction and lease what it returns there (grantLeases).
   */
  async pickLeasable(jobId: string, limit: number, now: number, trx?: Trx): Promise<Shard[]> {
    if (limit <= 0) return [];
    const lock = this.dialect === 'mysql' ? sql`for update skip locked` : sql``;
    const db = this.q(trx);
    const queued = await sql<Shard>`select * from shards ${this.usingIndex('shards_lease_idx')}
      where job_id = ${jobId} and status = ${SHARD_QUEUED}
      order by epoch, shard_index limit ${limit} ${lock}`.execute(db);
    const expired = await sql<Shard>`select * from shards ${this.usingIndex('shards_expiry_idx')}
      where job_id = ${jobId} and status = ${SHARD_LEASED} and lease_expires_at <= ${now}
      order by epoch, shard_index limit ${limit} ${lock}`.execute(db);
    return [...queued.rows, ...expired.rows]
      .sort((a, b) => a.epoch - b.epoch || a.shardIndex - b.shardIndex)
      .slice(0, limit);
  }

  /**
   * Leases each shard to its grant's owner until `expiresAt`, counting an attempt, if it may be
   * leased at `now` (queued, or its lease expired): a compare-and-set per row, one statement per
   * epoch. Returns how many rows it leased; fewer than asked means another writer got there first.
   */
  async grantLeases(jobId: string, grants: ShardGrant[], now: number, expiresAt: number, trx?: Trx): Promise<number> {
    let leased = 0;
    for (const { epoch, items } of byEpoch(grants)) {
      const result = await this.q(trx)
        .updateTable('shards')
        .set((eb) => ({
          status: SHARD_LEASED,
          leaseOwner: perShard(items, (g) => g.owner),
          leaseExpiresAt: expiresAt,
          attempts: eb('attempts', '+', 1),
        }))
        .where('jobId', '=', jobId)
        .where('epoch', '=', epoch)
        .where('shardIndex', 'in', items.map((g) => g.shardIndex))
        .where((eb) =>
          eb.or([eb('status', '=', SHARD_QUEUED), eb.and([eb('status', '=', SHARD_LEASED), eb('leaseExpiresAt', '<=', now)])]),
        )
        .executeTakeFirst();
      leased += Number(result.numUpdatedRows);
    }
    return leased;
  }

  /** Status and lease owner of each shard of `keys` that exists; locked for update on MySQL. */
  async holders(
    jobId: string,
    keys: { epoch: number; shardIndex: number }[],
    trx?: Trx,
  ): Promise<{ epoch: number; shardIndex: number; status: string; leaseOwner: string | null }[]> {
    const rows = [];
    for (const { epoch, items } of byEpoch(keys)) {
      rows.push(
        ...(await this.q(trx)
          .selectFrom('shards')
          .select(['epoch', 'shardIndex', 'status', 'leaseOwner'])
          .where('jobId', '=', jobId)
          .where('epoch', '=', epoch)
          .where('shardIndex', 'in', items.map((k) => k.shardIndex))
          .$if(this.dialect === 'mysql', (qb) => qb.forUpdate())
          .execute()),
      );
    }
    return rows;
  }

  /**
   * Marks each shard done at its step, if its owner still holds the lease: the compare-and-set of
   * `complete`, for many shards in one statement per epoch. Returns how many it marked.
   */
  async completeMany(jobId: string, items: ShardCompletion[], trx?: Trx): Promise<number> {
    let marked = 0;
    for (const group of byEpoch(items)) {
      const result = await this.q(trx)
        .updateTable('shards')
        .set({ status: SHARD_DONE, doneAt: this.now(), doneStep: perShard(group.items, (c) => c.step), leaseExpiresAt: null })
        .where('jobId', '=', jobId)
        .where('epoch', '=', group.epoch)
        .where('shardIndex', 'in', group.items.map((c) => c.shardIndex))
        .where('status', '=', SHARD_LEASED)
        .where('leaseOwner', '=', perShard(group.items, (c) => c.owner))
        .executeTakeFirst();
      marked += Number(result.numUpdatedRows);
    }
    return marked;
  }

  /** True while a shard of the job (of `epoch`, if given) is queued or leased: not finished yet. */
  async hasOpen(jobId: string, epoch?: number, trx?: Trx): Promise<boolean> {
    const inEpoch = epoch === undefined ? sql`` : sql`and epoch = ${epoch}`;
    const { rows } = await sql`select shard_index from shards ${this.usingIndex('shards_lease_idx')}
      where job_id = ${jobId} and status in (${SHARD_QUEUED}, ${SHARD_LEASED}) ${inEpoch} limit 1`.execute(this.q(trx));
    return rows.length > 0;
  }

  /** True when `epoch` has shards and every one is settled (done, poisoned or skipped). */
  async epochSettled(jobId: string, epoch: number, trx?: Trx): Promise<boolean> {
    // Usually an open shard answers at once; only a settled-looking epoch needs the second probe.
    if (await this.hasOpen(jobId, epoch, trx)) return false;
    const any = await this.q(trx)
      .selectFrom('shards')
      .select('shardIndex')
      .where('jobId', '=', jobId)
      .where('epoch', '=', epoch)
      .limit(1)
      .executeTakeFirst();
    return any !== undefined;
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
}
