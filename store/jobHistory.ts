// The Brain's history of jobs: one summary per job (features, usage peaks, outcome), the
// failures of its nodes with exit reasons, and usage peaks read from the metrics samples.
import { digestHex } from '../common/tokens.ts';
import { Repository, toNumber, type Trx } from './repository.ts';
import type { JobFailureRow, JobSummaryRow } from './schema.ts';

export type JobSummary = JobSummaryRow;
export type NewJobSummary = Omit<JobSummaryRow, 'nodeFailures' | 'oomFailures' | 'createdAt' | 'endedAt' | 'finalNodes' | 'peakRssBytes' | 'peakCpu' | 'runtimeMs'> &
  Partial<Pick<JobSummaryRow, 'createdAt' | 'finalNodes' | 'peakRssBytes' | 'peakCpu'>>;
export type JobFailure = Omit<JobFailureRow, 'oom'> & { oom: boolean };

export interface JobOutcome {
  phase: string;
  finalNodes: number | null;
  peakRssBytes: number | null;
  peakCpu: number | null;
  endedAt: number;
}

/** Metric names the Brain reads (written by the API's heartbeat handler). */
export const METRIC_RSS_BYTES = 'rss_bytes';
export const METRIC_CPU_PERCENT = 'cpu_percent';
export const METRIC_THROUGHPUT = 'throughput';
export const METRIC_STEP = 'step';

/**
 * The history key of one run of a job: `<job>@<first 8 hex of its token's digest>`. Summaries and
 * failures are both keyed by it, so reruns under one name stay separate and a run's failures
 * count on its own summary. From the digest, never the token: the key is no secret.
 */
export function historyKey(jobId: string, tokenDigest: string): string {
  return `${jobId}@${digestHex(tokenDigest).slice(0, 8)}`;
}

export class JobHistoryRepository extends Repository {
  /** Records the job's features; a repeat (retried activity, same job name rerun) refreshes them. */
  async recordStart(summary: NewJobSummary, trx?: Trx): Promise<void> {
    await this.inTransaction(trx, async (t) => {
      const row = { ...summary, createdAt: summary.createdAt ?? this.now(), phase: summary.phase };
      const existing = await t.selectFrom('jobSummaries').select('jobId').where('jobId', '=', summary.jobId).executeTakeFirst();
      if (existing) {
        await t.updateTable('jobSummaries').set({ ...row, endedAt: null, runtimeMs: null, nodeFailures: 0, oomFailures: 0 }).where('jobId', '=', summary.jobId).execute();
      } else await t.insertInto('jobSummaries').values(row).execute();
    });
  }

  /** Records how the job ended; runtime is measured from its start. */
  async recordOutcome(jobId: string, outcome: JobOutcome, trx?: Trx): Promise<void> {
    const row = await this.q(trx).selectFrom('jobSummaries').select('createdAt').where('jobId', '=', jobId).executeTakeFirst();
    if (!row) return;
    await this.q(trx)
      .updateTable('jobSummaries')
      .set({ ...outcome, runtimeMs: Math.max(0, outcome.endedAt - row.createdAt) })
      .where('jobId', '=', jobId)
      .execute();
  }

  async get(jobId: string, trx?: Trx): Promise<JobSummary | undefined> {
    return this.q(trx).selectFrom('jobSummaries').selectAll().where('jobId', '=', jobId).executeTakeFirst();
  }

  /**
   * Ended jobs like this one, newest first: same name first, then same user and group.
   * The job itself is left out.
   */
  async similar(job: { jobId: string; name: string; user: string; group: string }, limit: number, trx?: Trx): Promise<JobSummary[]> {
    const byName = await this.q(trx)
      .selectFrom('jobSummaries')
      .selectAll()
      .where('name', '=', job.name)
      .where('endedAt', 'is not', null)
      .where('jobId', '!=', job.jobId)
      .orderBy('endedAt', 'desc')
      .limit(limit)
      .execute();
    if (byName.length >= limit) return byName;
    const byOwner = await this.q(trx)
      .selectFrom('jobSummaries')
      .selectAll()
      .where('user', '=', job.user)
      .where('group', '=', job.group)
      .where('name', '!=', job.name)
      .where('endedAt', 'is not', null)
      .orderBy('endedAt', 'desc')
      .limit(limit - byName.length)
      .execute();
    return [...byName, ...byOwner];
  }

  /** A node failure; counted on the job's summary (OOMs separately). */
  async recordFailure(f: { jobId: string; nodeId: number; incarnation: number; exitCode: number | null; reason: string; oom: boolean }, trx?: Trx): Promise<void> {
    await this.inTransaction(trx, async (t) => {
      await t.insertInto('jobFailures').values({ ...f, reason: f.reason.slice(0, 1000), oom: f.oom ? 1 : 0, createdAt: this.now() }).execute();
      await t
        .updateTable('jobSummaries')
        .set((eb) => ({
          nodeFailures: eb('nodeFailures', '+', 1),
          oomFailures: eb('oomFailures', '+', f.oom ? 1 : 0),
        }))
        .where('jobId', '=', f.jobId)
        .execute();
    });
  }

  async failures(jobId: string, trx?: Trx): Promise<JobFailure[]> {
    const rows = await this.q(trx).selectFrom('jobFailures').selectAll().where('jobId', '=', jobId).orderBy('id').execute();
    return rows.map((r) => ({ ...r, oom: r.oom === 1 }));
  }

  /** Highest sample of a metric for the job (one node, or all); null when there is none. */
  async peak(jobId: string, name: string, nodeId?: number, trx?: Trx): Promise<number | null> {
    const row = await this.q(trx)
      .selectFrom('metrics')
      .select((eb) => eb.fn.max('value').as('peak'))
      .where('jobId', '=', jobId)
      .where('name', '=', name)
      .$if(nodeId !== undefined, (qb) => qb.where('nodeId', '=', nodeId ?? 0))
      .executeTakeFirst();
    return row?.peak === null || row?.peak === undefined ? null : toNumber(row.peak);
  }

  /** Retention: deletes summaries of jobs that ended before `cutoff`, and failures older than it. */
  async deleteOlderThan(cutoff: number, trx?: Trx): Promise<number> {
    const summaries = await this.q(trx).deleteFrom('jobSummaries').where('endedAt', '<', cutoff).executeTakeFirst();
    await this.q(trx).deleteFrom('jobFailures').where('createdAt', '<', cutoff).execute();
    return Number(summaries.numDeletedRows);
  }
}
