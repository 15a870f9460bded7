// The Brain HTTP API (/brain/v1): optimize (resource plans) and config (merged configuration).
// What names a job takes the operator token or that job's token (a read also one of its node
// tokens); the rest (configurations, or matching characteristics) the operator token only. Refusals all look alike (api/auth.ts).
import type { FastifyInstance } from 'fastify';
import { BrainConfigError, jobCharacteristicsSchema } from '../brain/config/schema.ts';
import { STAGES } from '../brain/optimizers/types.ts';
import { UnknownStageError } from '../brain/optimizers/router.ts';
import { configQuery, configRequest, optimizeRequest, type ConfigResponse } from '../brain/protocol.ts';
import { BrainService, characteristicsOf, JobNotFoundError } from '../brain/service.ts';
import type { Store } from '../store/index.ts';
import { BrainAccess } from './auth.ts';
import { HttpError, parseInput } from './errors.ts';

function brainErrors<T>(fn: () => Promise<T>): Promise<T> {
  return fn().catch((err: unknown) => {
    if (err instanceof UnknownStageError) {
      throw new HttpError(400, 'unknown_stage', `body.stage: ${err.message}`, { stages: STAGES });
    }
    if (err instanceof JobNotFoundError) throw new HttpError(404, 'job_not_found', err.message);
    if (err instanceof BrainConfigError) throw new HttpError(400, 'invalid_request', err.message);
    throw err;
  });
}

/** `label=k=v` query values → a labels object. */
function labelsOf(label: string | string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of label === undefined ? [] : Array.isArray(label) ? label : [label]) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new HttpError(400, 'invalid_request', `query.label: "${item}" is not key=value`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** `operatorToken`: the operator's secret (config.operatorToken); unset, only jobs' own tokens pass. */
export function registerBrainRoutes(app: FastifyInstance, store: Store, operatorToken: string | undefined): void {
  const brain = new BrainService(store);
  const access = new BrainAccess(store, operatorToken);

  app.post('/brain/v1/optimize', async (request) => {
    const body = parseInput(optimizeRequest, request.body, 'body');
    // An OOM plan also records the failure in the job's history: the job's own token (the
    // worker's) or the operator, never a trainer's node token.
    await access.check(request, body.job, { nodeTokens: false });
    return brainErrors(() => brain.optimize(body));
  });

  app.get('/brain/v1/config', async (request): Promise<ConfigResponse> => {
    const q = parseInput(configQuery, request.query, 'query');
    await access.check(request, q.job);
    return brainErrors(async () => {
      const job = q.job
        ? characteristicsOf(await brain.jobSpec(q.job))
        : parseInput(jobCharacteristicsSchema, { name: q.name, user: q.user, group: q.group, cluster: q.cluster, labels: labelsOf(q.label) }, 'query');
      return { job, ...(await brain.configFor(job)) };
    });
  });

  app.post('/brain/v1/config', async (request): Promise<ConfigResponse> => {
    await access.check(request);
    const job = parseInput(configRequest, request.body, 'body');
    return { job, ...(await brain.configFor(job)) };
  });

  /** Every configuration of every source's latest snapshot. */
  app.get('/brain/v1/configs', async (request) => {
    await access.check(request);
    return { configs: await brain.configs() };
  });
}
