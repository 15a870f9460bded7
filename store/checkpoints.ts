// Checkpoints: what each rank saved at a step, and the commit that declares a step's
// checkpoint complete (all ranks saved) together with the data-shard position to resume from.
import { fromJson, isDuplicateKey, Repository, toJson, type Trx } from './repository.ts';
import type { CheckpointCommitRow, CheckpointRow } from './schema.ts';

export type Checkpoint = CheckpointRow;

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
}
