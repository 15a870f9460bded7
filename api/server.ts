// The Rover API: agent-facing master service, health and metrics. Stateless; state is in the store.
import fastify, { type FastifyBaseLogger } from 'fastify';
import type { RoverConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import type { Store } from '../store/index.ts';
import { registerBrainRoutes } from './brainRoutes.ts';
import { HttpError } from './errors.ts';
import { MasterService } from './master.ts';
import { createApiMetrics } from './metrics.ts';
import { registerMasterRoutes } from './masterRoutes.ts';
import { LedgerService } from './ledger.ts';
import { registerTrainerRoutes } from './trainerRoutes.ts';

export interface ApiDeps {
  config: RoverConfig;
  store: Store;
  logger: Logger;
  /** Clock for rendezvous and heartbeat decisions; tests may pass their own. */
  now?: () => number;
}

export async function buildApi(deps: ApiDeps) {
  const app = fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.config.api.bodyLimitBytes,
    disableRequestLogging: true,
  });
  const now = deps.now ?? Date.now;
  const metrics = createApiMetrics(deps.store, now);
  const registry = metrics.registry;
  metrics.instrument(app);

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (error instanceof HttpError) {
      return reply.status(error.statusCode).send({ error: error.code, message: error.message, details: error.details });
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // Fastify's own rejections: malformed JSON, body too large, bad content type.
      return reply.status(status).send({ error: error.code ?? 'bad_request', message: error.message });
    }
    request.log.error({ err: error, url: request.url }, 'request failed');
    return reply.status(500).send({ error: 'internal', message: 'internal error; see the API log' });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );

  app.get('/healthz', async () => {
    await deps.store.ping();
    return { status: 'ok' };
  });
  const master = new MasterService(deps.store, now, metrics.hooks);
  registerMasterRoutes(app, master);
  // The Brain API is served here too (ROVER_BRAIN_URL defaults to this API); api/brainMain.ts runs it alone.
  registerBrainRoutes(app, deps.store);
  registerTrainerRoutes(app, (jobId, token) => master.authorize(jobId, token), new LedgerService(deps.store, deps.now ?? Date.now));
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  return app;
}
