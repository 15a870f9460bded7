// Checkpoint deletion, the API's part: it hands the files a commit doomed (api/ledger.ts records
// them) to an agent of the job, which deletes them where they are (agent/checkpointDeletion.ts).
// The API touches no file: in Kubernetes it mounts no checkpoint volume. A request names its job
// and its token must open that job, and every read and write is keyed by that job: an agent sees
// and acknowledges only its own job's files. Each answer is one bounded page, whatever the nodes.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import {
  CLAIM_LEASE_MS,
  deletionClaimRequest,
  deletionDoneRequest,
  LIVE_PAGE_MAX,
  liveQuery,
  type DeletionClaimResponse,
  type LiveResponse,
} from '../common/checkpointDeletionProtocol.ts';
import type { Job, Store } from '../store/index.ts';
import { HttpError, parseInput } from './errors.ts';
import { requestJob, type Authorize } from './trainerRoutes.ts';

export class CheckpointDeletions {
  constructor(private readonly store: Store) {}

  /** Up to `limit` doomed files of the job that no running claim holds, now this claim's. */
  async claim(job: Job, limit: number): Promise<DeletionClaimResponse> {
    const token = randomBytes(16).toString('hex');
    const rows = await this.store.checkpoints.claimDeletions(job.id, { token, limit, leaseMs: CLAIM_LEASE_MS });
    return {
      token,
      claimedUntil: rows[0]?.claimedUntil ?? 0,
      deletions: rows.map((r) => ({ id: r.id, step: r.step, rank: r.rank, path: r.path, doomedAt: r.doomedAt })),
    };
  }

  /** One page of the job's live reports: files no deletion may touch. */
  async live(job: Job, after: { step: number; rank: number } | undefined): Promise<LiveResponse> {
    const rows = await this.store.checkpoints.listLive(job.id, after, LIVE_PAGE_MAX + 1);
    const reports = rows.slice(0, LIVE_PAGE_MAX);
    const last = reports.at(-1);
    return { reports, ...(rows.length > LIVE_PAGE_MAX && last && { next: { step: last.step, rank: last.rank } }) };
  }

  done(job: Job, token: string, ids: number[]): Promise<number> {
    return this.store.checkpoints.finishDeletions(job.id, token, ids);
  }
}

export function registerCheckpointDeletionRoutes(app: FastifyInstance, authorize: Authorize, deletions: CheckpointDeletions): void {
  const job = requestJob(authorize);

  app.post('/v1/jobs/:job/checkpoints/deletions/claim', async (request) => {
    const j = await job(request);
    return deletions.claim(j, parseInput(deletionClaimRequest, request.body, 'body').limit);
  });

  app.get('/v1/jobs/:job/checkpoints/live', async (request) => {
    const j = await job(request);
    const q = parseInput(liveQuery, request.query, 'query');
    if ((q.afterStep === undefined) !== (q.afterRank === undefined)) {
      throw new HttpError(400, 'invalid_request', 'query: afterStep and afterRank go together (the previous page\'s next)');
    }
    return deletions.live(j, q.afterStep === undefined ? undefined : { step: q.afterStep, rank: q.afterRank! });
  });

  app.post('/v1/jobs/:job/checkpoints/deletions/done', async (request) => {
    const j = await job(request);
    const req = parseInput(deletionDoneRequest, request.body, 'body');
    return { acknowledged: await deletions.done(j, req.token, req.ids) };
  });
}
