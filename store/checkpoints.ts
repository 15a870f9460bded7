// Checkpoints: what each rank saved at a step, the commit that declares a step's checkpoint
// complete (all ranks saved) together with the data-shard position to resume from, and the files
// a commit doomed until an agent of the job deleted them (the API never sees the files).
import { fromJson, isDuplicateKey, Repository, toJson, type Trx } from './repository.ts';
import type { CheckpointCommitRow, CheckpointDeletionRow, CheckpointRow } from './schema.ts';

export type Checkpoint = CheckpointRow;
export type CheckpointDeletion = CheckpointDeletionRow;

/** A report's place in the job's (step, rank) order: where a page of live reports goes on from. */
export interface CheckpointCursor {
  step: number;
  rank: number;
}

export interface CheckpointCommit extends Omit<CheckpointCommitRow, 'shardCursor'> {
  shardCursor: unknown;
}

export interface CheckpointReport {
  jobId: string;
  step: number;
  rank: number;
  path: string;
  bytes: number;
  checksum: string;
}

export interface NewCheckpointCommit {
  jobId: string;
  step: number;
  worldSize: number;
  shardCursor: unknown;
}

function toCommit(row: CheckpointCommitRow): CheckpointCommit {
  return { ...row, shardCursor: fromJson(row.shardCursor) };
}

export class CheckpointsRepository extends Repository {
  /** Records a rank's checkpoint for a step; a second report for the same rank replaces it. */
  async report(input: CheckpointReport, trx?: Trx): Promise<Checkpoint> {
    const row: Checkpoint = {
      jobId: input.jobId,
      step: input.step,
      rank: input.rank,
      path: input.path,
      bytes: input.bytes,
      checksum: input.checksum,
      reportedAt: this.now(),
    };
    await this.inTransaction(trx, async (t) => {
      try {
        await t.insertInto('checkpoints').values(row).execute();
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        await t
          .updateTable('checkpoints')
          .set({ path: row.path, bytes: row.bytes, checksum: row.checksum, reportedAt: row.reportedAt })
          .where('jobId', '=', row.jobId)
          .where('step', '=', row.step)
          .where('rank', '=', row.rank)
          .execute();
      }
    });
    return row;
  }

  /** The ranks' reports for one step, by rank. */
  async listForStep(jobId: string, step: number, trx?: Trx): Promise<Checkpoint[]> {
    return this.q(trx)
      .selectFrom('checkpoints')
      .selectAll()
      .where('jobId', '=', jobId)
      .where('step', '=', step)
      .orderBy('rank')
      .execute();
  }

  /** Commits the step's checkpoint. True the first time; a repeated commit changes nothing. */
  async commit(input: NewCheckpointCommit, trx?: Trx): Promise<boolean> {
    try {
      await this.q(trx)
        .insertInto('checkpointCommits')
        .values({
          jobId: input.jobId,
          step: input.step,
          worldSize: input.worldSize,
          shardCursor: toJson(input.shardCursor),
          committedAt: this.now(),
        })
        .execute();
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  async getCommit(jobId: string, step: number, trx?: Trx): Promise<CheckpointCommit | undefined> {
    const row = await this.q(trx)
      .selectFrom('checkpointCommits')
      .selectAll()
      .where('jobId', '=', jobId)
      .where('step', '=', step)
      .executeTakeFirst();
    return row && toCommit(row);
  }

  /** Committed checkpoints of the job, newest first. */
  async listCommits(jobId: string, trx?: Trx): Promise<CheckpointCommit[]> {
    const rows = await this.q(trx)
      .selectFrom('checkpointCommits')
      .selectAll()
      .where('jobId', '=', jobId)
      .orderBy('step', 'desc')
      .execute();
    return rows.map(toCommit);
  }

  /** Forgets the reports and the commit (if any) of these steps. */
  async deleteSteps(jobId: string, steps: number[], trx?: Trx): Promise<void> {
    if (steps.length === 0) return;
    await this.q(trx).deleteFrom('checkpoints').where('jobId', '=', jobId).where('step', 'in', steps).execute();
    await this.q(trx).deleteFrom('checkpointCommits').where('jobId', '=', jobId).where('step', 'in', steps).execute();
  }

  /** Reports of steps below `step` that were never committed: they can never be resumed from. */
  async listUncommittedBelow(jobId: string, step: number, trx?: Trx): Promise<Checkpoint[]> {
    return this.q(trx)
      .selectFrom('checkpoints')
      .selectAll()
      .where('jobId', '=', jobId)
      .where('step', '<', step)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('checkpointCommits as c')
              .select('c.step')
              .whereRef('c.jobId', '=', 'checkpoints.jobId')
              .whereRef('c.step', '=', 'checkpoints.step'),
          ),
        ),
      )
      .execute();
  }

  /** Forgets every report and commit of the job (a new run under the same name). */
  async deleteByJob(jobId: string, trx?: Trx): Promise<void> {
    await this.q(trx).deleteFrom('checkpoints').where('jobId', '=', jobId).execute();
    await this.q(trx).deleteFrom('checkpointCommits').where('jobId', '=', jobId).execute();
  }

  /** The committed checkpoint with the highest step: where a restarted job resumes. */
  async latestCommit(jobId: string, trx?: Trx): Promise<CheckpointCommit | undefined> {
    const row = await this.q(trx)
      .selectFrom('checkpointCommits')
      .selectAll()
      .where('jobId', '=', jobId)
      .orderBy('step', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && toCommit(row);
  }

  /**
   * Records the files of these reports as doomed, to be deleted by an agent of the job (call it
   * with the deleteSteps that forgets the reports, in one transaction).
   */
  async doom(jobId: string, reports: Pick<Checkpoint, 'step' | 'rank' | 'path'>[], trx?: Trx): Promise<void> {
    if (reports.length === 0) return;
    const doomedAt = this.now();
    const rows = reports.map((r) => ({ jobId, step: r.step, rank: r.rank, path: r.path, doomedAt }));
    // In chunks: a step of a large world has thousands of files, and SQLite caps bound variables.
    for (let at = 0; at < rows.length; at += 500) await this.q(trx).insertInto('checkpointDeletions').values(rows.slice(at, at + 500)).execute();
  }

  /**
   * Claims up to `limit` doomed files of the job no live claim holds, for `leaseMs`, under `token`,
   * oldest first. Two claims never get the same row while the first's lease runs. With nothing
   * doomed, one indexed read and no transaction.
   */
  async claimDeletions(jobId: string, claim: { token: string; limit: number; leaseMs: number }, trx?: Trx): Promise<CheckpointDeletion[]> {
    const now = this.now();
    const free = (db: typeof this.db) =>
      db.selectFrom('checkpointDeletions').select('id').where('jobId', '=', jobId).where('claimedUntil', '<=', now).orderBy('id').limit(claim.limit).execute();
    if (!trx && (await free(this.db)).length === 0) return [];
    return this.inContendedTransaction(trx, async (t) => {
      const ids = (await free(t)).map((r) => r.id);
      if (ids.length === 0) return [];
      await t
        .updateTable('checkpointDeletions')
        .set({ claimedUntil: now + claim.leaseMs, claimToken: claim.token })
        .where('jobId', '=', jobId)
        .where('id', 'in', ids)
        .where('claimedUntil', '<=', now)
        .execute();
      return t.selectFrom('checkpointDeletions').selectAll().where('jobId', '=', jobId).where('id', 'in', ids).where('claimToken', '=', claim.token).orderBy('id').execute();
    });
  }

  /** Forgets doomed files of the job its claim `token` deleted; returns how many. Another job's ids, or a lapsed claim's, change nothing. */
  async finishDeletions(jobId: string, token: string, ids: number[], trx?: Trx): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.q(trx)
      .deleteFrom('checkpointDeletions')
      .where('jobId', '=', jobId)
      .where('claimToken', '=', token)
      .where('id', 'in', ids)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Doomed files of the job not deleted yet, oldest first (tests, operators). */
  async listDoomed(jobId: string, trx?: Trx): Promise<CheckpointDeletion[]> {
    return this.q(trx).selectFrom('checkpointDeletions').selectAll().where('jobId', '=', jobId).orderBy('id').execute();
  }

  /**
   * One page of the job's live reports (kept commits and steps not yet committed: every report the
   * ledger has not doomed), in (step, rank) order after `after`. Primary-key range reads.
   */
  async listLive(jobId: string, after: CheckpointCursor | undefined, limit: number, trx?: Trx): Promise<Pick<Checkpoint, 'step' | 'rank' | 'path'>[]> {
    let q = this.q(trx).selectFrom('checkpoints').select(['step', 'rank', 'path']).where('jobId', '=', jobId);
    if (after) q = q.where((eb) => eb.or([eb('step', '>', after.step), eb.and([eb('step', '=', after.step), eb('rank', '>', after.rank)])]));
    return q.orderBy('step').orderBy('rank').limit(limit).execute();
  }
}
