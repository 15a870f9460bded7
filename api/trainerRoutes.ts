// HTTP routes for training processes: /v1/jobs/:job/… with the job's bearer token. Shards
// (lease, done, give back, progress), step metrics, and checkpoints (report, latest committed,
// restored).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  checkpointReport,
  doneRequest,
  giveBackRequest,
  latestQuery,
  leaseRequest,
  restoreReport,
  stepReport,
} from '../common/trainerProtocol.ts';
import type { Job } from '../store/index.ts';
import { bearerToken, namedNode, type NamedNode } from './auth.ts';
import { HttpError, parseInput } from './errors.ts';
import type { LedgerService } from './ledger.ts';

const jobParams = z.strictObject({ job: z.string().min(1).max(253) });
const latestRefQuery = latestQuery.extend({
  node: z.coerce.number().int().min(0).optional(),
  incarnation: z.coerce.number().int().min(0).optional(),
  rank: z.coerce.number().int().min(0).optional(),
});

/** Checks the token for the job and, when the request names a node (`ref`), that a node token is that node's. */
export type Authorize = (jobId: string, token: string | undefined, ref?: NamedNode) => Promise<Job>;

/** The job a `/v1/jobs/:job/…` request is for, its token checked (and the node it names, if any). */
export function requestJob(authorize: Authorize): (request: FastifyRequest) => Promise<Job> {
  return async (request) => {
    const { job: jobId } = parseInput(jobParams, request.params, 'path');
    return authorize(jobId, bearerToken(request), namedNode(request));
  };
}

export function registerTrainerRoutes(app: FastifyInstance, authorize: Authorize, ledger: LedgerService): void {
  const job = requestJob(authorize);

  app.post('/v1/jobs/:job/shards/lease', async (request) => {
    const j = await job(request);
    return ledger.lease(j, parseInput(leaseRequest, request.body, 'body'));
  });

  app.post('/v1/jobs/:job/shards/done', async (request) => {
    const j = await job(request);
    return ledger.done(j, parseInput(doneRequest, request.body, 'body'));
  });

  app.post('/v1/jobs/:job/shards/giveback', async (request) => {
    const j = await job(request);
    return { returned: await ledger.giveBack(j, parseInput(giveBackRequest, request.body, 'body')) };
  });

  app.get('/v1/jobs/:job/shards', async (request) => ledger.progress(await job(request)));

  app.post('/v1/jobs/:job/trainers/step', async (request) => {
    const j = await job(request);
    await ledger.reportStep(j, parseInput(stepReport, request.body, 'body'));
    return { ok: true };
  });

  app.post('/v1/jobs/:job/checkpoints', async (request) => {
    const j = await job(request);
    return ledger.reportCheckpoint(j, parseInput(checkpointReport, request.body, 'body'));
  });

  app.post('/v1/jobs/:job/checkpoints/restored', async (request) => {
    const j = await job(request);
    await ledger.reportRestore(j, parseInput(restoreReport, request.body, 'body'));
    return { ok: true };
  });

  app.get('/v1/jobs/:job/checkpoints/latest', async (request) => {
    const j = await job(request);
    const q = parseInput(latestRefQuery, request.query, 'query');
    // With a round, the caller is the trainer entering it: it names itself in full, so that a
    // node token's rank is checked like on every other trainer call.
    if (q.round !== undefined && (q.node === undefined || q.incarnation === undefined || q.rank === undefined)) {
      throw new HttpError(400, 'invalid_request', 'query: with round, also node, incarnation and rank (the trainer entering the round)');
    }
    const ref = q.round === undefined ? undefined : { node: q.node!, incarnation: q.incarnation!, rank: q.rank!, round: q.round };
    return ledger.latest(j, ref);
  });
}
