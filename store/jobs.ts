// Jobs: one row per submitted training job, keyed by job name.
import type { JobSpec } from '../common/spec/index.ts';
import { tokenDigest } from '../common/tokens.ts';
import { fromJson, isDuplicateKey, Repository, toJson, type Trx } from './repository.ts';
import type { JobRow } from './schema.ts';

export interface Job extends Omit<JobRow, 'spec'> {
  /** The spec as submitted, parsed and defaulted (common/spec parseJobSpec) before it is stored. */
  spec: JobSpec;
}

export interface NewJob {
  id: string;
  workflowId: string;
  user: string;
  group: string;
  backend: string;
  spec: JobSpec;
  phase: string;
  /** The run's token; only its digest is stored (Job.tokenDigest). */
  token: string;
}

export interface JobPatch {
  phase?: string;
  reason?: string | null;
  endedAt?: number | null;
  spec?: JobSpec;
  workflowId?: string;
}

export interface JobFilter {
  phases?: string[];
  user?: string;
  /** Newest first; default 100. */
  limit?: number;
}

function toJob(row: JobRow): Job {
  return { ...row, spec: fromJson(row.spec) as JobSpec };
}

export class JobsRepository extends Repository {
  /** Inserts the job; if a job with this id exists, returns it unchanged with created=false. */
  async create(job: NewJob, trx?: Trx): Promise<{ job: Job; created: boolean }> {
    const now = this.now();
    let created = true;
    try {
      await this.q(trx)
        .insertInto('jobs')
        .values({
          id: job.id,
          workflowId: job.workflowId,
          user: job.user,
          group: job.group,
          backend: job.backend,
          spec: toJson(job.spec),
          phase: job.phase,
          tokenDigest: tokenDigest(job.token),
          createdAt: now,
          updatedAt: now,
        })
        .execute();
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      created = false;
    }
    const stored = await this.get(job.id, trx);
    if (!stored) throw new Error(`job ${job.id} vanished right after insert`);
    return { job: stored, created };
  }

  async get(id: string, trx?: Trx): Promise<Job | undefined> {
    const row = await this.q(trx).selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toJob(row);
  }

  async list(filter: JobFilter = {}, trx?: Trx): Promise<Job[]> {
    if (filter.phases?.length === 0) return [];
    const rows = await this.q(trx)
      .selectFrom('jobs')
      .selectAll()
      .$if(filter.phases !== undefined, (qb) => qb.where('phase', 'in', filter.phases ?? []))
      .$if(filter.user !== undefined, (qb) => qb.where('user', '=', filter.user ?? ''))
      .orderBy('createdAt', 'desc')
      .orderBy('id')
      .limit(filter.limit ?? 100)
      .execute();
    return rows.map(toJob);
  }

  /** Replaces every field of an existing job, for a new run under the same name. */
  async replace(job: NewJob, trx?: Trx): Promise<boolean> {
    const now = this.now();
    const result = await this.q(trx)
      .updateTable('jobs')
      .set({
        workflowId: job.workflowId,
        user: job.user,
        group: job.group,
        backend: job.backend,
        spec: toJson(job.spec),
        phase: job.phase,
        tokenDigest: tokenDigest(job.token),
        reason: null,
        endedAt: null,
        hangCheckedAt: null,
        hangEventId: null,
        createdAt: now,
        updatedAt: now,
      })
      .where('id', '=', job.id)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Applies the patch and bumps updatedAt; false when no such job. */
  async update(id: string, patch: JobPatch, trx?: Trx): Promise<boolean> {
    const { spec, ...rest } = patch;
    const result = await this.q(trx)
      .updateTable('jobs')
      .set({ ...rest, ...(spec !== undefined ? { spec: toJson(spec) } : {}), updatedAt: this.now() })
      .where('id', '=', id)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /**
   * Claims this interval's hang check of the job (api/hangWatch.ts): true for exactly one caller
   * per `everyMs`, whichever API replica it runs on (a compare-and-set on hangCheckedAt).
   * Leaves updatedAt alone: this is bookkeeping, not a change of the job.
   */
  async claimHangCheck(id: string, now: number, everyMs: number, trx?: Trx): Promise<boolean> {
    const result = await this.q(trx)
      .updateTable('jobs')
      .set({ hangCheckedAt: now })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('hangCheckedAt', 'is', null), eb('hangCheckedAt', '<=', now - everyMs)]))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /**
   * Claims the job's straggler judgement for this interval: true for the one caller that moved
   * stragglerCheckedAt to `now` (none ran in the last `everyMs`), on any API replica.
   */
  async claimStragglerCheck(id: string, now: number, everyMs: number, trx?: Trx): Promise<boolean> {
    const result = await this.q(trx)
      .updateTable('jobs')
      .set({ stragglerCheckedAt: now })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('stragglerCheckedAt', 'is', null), eb('stragglerCheckedAt', '<=', now - everyMs)]))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Records the hang the latest check found (its hang_suspected event id), or null for none. */
  async setHangEvent(id: string, eventId: number | null, trx?: Trx): Promise<void> {
    await this.q(trx).updateTable('jobs').set({ hangEventId: eventId }).where('id', '=', id).execute();
  }
}
