// Shard ledgers: one row per job with a dataset. It says which rendezvous round the shard table
// was last rewound for and to which committed step, and serialises the rewinds.
import { sql } from 'kysely';
import { isDuplicateKey, Repository, type Trx } from './repository.ts';
import type { ShardLedgerRow } from './schema.ts';

export type ShardLedger = ShardLedgerRow;

export class ShardLedgersRepository extends Repository {
  /**
   * The job's ledger. `lock`: 'update' takes the row for writing (a rewind), 'share' keeps a
   * rewind out while a lease runs. Locks only matter on MySQL; SQLite writers are serial.
   */
  async get(jobId: string, opts: { lock?: 'update' | 'share' } = {}, trx?: Trx): Promise<ShardLedger | undefined> {
    const mysql = this.dialect === 'mysql';
    return this.q(trx)
      .selectFrom('shardLedgers')
      .selectAll()
      .where('jobId', '=', jobId)
      .$if(mysql && opts.lock === 'update', (qb) => qb.forUpdate())
      // MariaDB has no FOR SHARE; LOCK IN SHARE MODE works on both MariaDB and MySQL.
      .$if(mysql && opts.lock === 'share', (qb) => qb.modifyEnd(sql`lock in share mode`))
      .executeTakeFirst();
  }

  /** Creates the ledger at round 0 for the run with this token digest; false when it exists already. */
  async create(jobId: string, tokenDigest: string, trx?: Trx): Promise<boolean> {
    try {
      await this.q(trx)
        .insertInto('shardLedgers')
        .values({ jobId, tokenDigest, round: 0, resumeStep: 0, epochsDone: 0, createdAt: this.now() })
        .execute();
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  async setRound(jobId: string, round: number, resumeStep: number, epochsDone: number, trx?: Trx): Promise<void> {
    await this.q(trx).updateTable('shardLedgers').set({ round, resumeStep, epochsDone }).where('jobId', '=', jobId).execute();
  }

  /** Moves epochsDone from `from` to `from + 1`; true for the one caller that did it. */
  async advanceEpochsDone(jobId: string, from: number, trx?: Trx): Promise<boolean> {
    const result = await this.q(trx)
      .updateTable('shardLedgers')
      .set({ epochsDone: from + 1 })
      .where('jobId', '=', jobId)
      .where('epochsDone', '=', from)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async delete(jobId: string, trx?: Trx): Promise<void> {
    await this.q(trx).deleteFrom('shardLedgers').where('jobId', '=', jobId).execute();
  }
}
