// The job's configuration for its own training processes: GET /v1/jobs/:job/config with the job
// token, a long poll when the caller names the version it has. Stateless: each poll re-reads the
// served snapshots (a few rows per source, independent of the job's node count).
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { BrainService } from '../brain/service.ts';
import { configQuery, type JobConfigResponse } from '../common/trainerProtocol.ts';
import type { Store } from '../store/index.ts';
import { bearerToken } from './auth.ts';
import { parseInput } from './errors.ts';
import type { Authorize } from './trainerRoutes.ts';

const jobParams = z.strictObject({ job: z.string().min(1).max(253) });

/** How often a long poll re-reads the served configuration. */
const CONFIG_POLL_MS = 500;


export function registerConfigRoutes(app: FastifyInstance, authorize: Authorize, store: Store): void {
  const brain = new BrainService(store);

  app.get('/v1/jobs/:job/config', async (request): Promise<JobConfigResponse> => {
    const { job: jobId } = parseInput(jobParams, request.params, 'path');
    const query = parseInput(configQuery, request.query, 'query');
    await authorize(jobId, bearerToken(request));
    const deadline = Date.now() + query.waitMs;
    const gone = () => request.raw.destroyed;
    for (;;) {
      const { version, configure, applied, origin } = await brain.jobConfig(jobId);
      if (version !== query.after || Date.now() >= deadline || gone()) return { version, configure, applied, origin };
      await sleep(Math.min(CONFIG_POLL_MS, Math.max(1, deadline - Date.now())));
    }
  });
}
