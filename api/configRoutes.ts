// The job's configuration for its own training processes: GET /v1/jobs/:job/config with the job
// token, a long poll when the caller names the version it has (api/longPoll.ts). Stateless: a
// waiting poll re-reads the served snapshots (a few rows per source, independent of the job's
// node count), one read per interval shared by the job's waiting trainers in this process.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { BrainService } from '../brain/service.ts';
import { configQuery, type JobConfigResponse } from '../common/trainerProtocol.ts';
import type { Store } from '../store/index.ts';
import { bearerToken } from './auth.ts';
import { parseInput } from './errors.ts';
import type { LongPolls } from './longPoll.ts';
import type { Authorize } from './trainerRoutes.ts';

const jobParams = z.strictObject({ job: z.string().min(1).max(253) });

export function registerConfigRoutes(app: FastifyInstance, authorize: Authorize, store: Store, polls: LongPolls): void {
  const brain = new BrainService(store);

  app.get('/v1/jobs/:job/config', async (request): Promise<JobConfigResponse> => {
    const { job: jobId } = parseInput(jobParams, request.params, 'path');
    const query = parseInput(configQuery, request.query, 'query');
    await authorize(jobId, bearerToken(request));
    const read = () => brain.jobConfig(jobId);
    const first = await read();
    if (query.after === undefined || first.version !== query.after || query.waitMs === 0) return answer(first);
    const changed = await polls.wait(request, { key: `config ${jobId}`, read, ready: (c) => c.version !== query.after, waitMs: query.waitMs });
    return answer(changed ?? (await read()));
  });
}

function answer({ version, configure, applied, origin }: JobConfigResponse): JobConfigResponse {
  return { version, configure, applied, origin };
}
