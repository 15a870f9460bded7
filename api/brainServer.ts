// The Brain as its own listener (api/brainMain.ts): the /brain/v1 routes plus health, so heavy
// optimization can run apart from the agent-facing API.
import fastify, { type FastifyBaseLogger } from 'fastify';
import type { RoverConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import type { Store } from '../store/index.ts';
import { registerBrainRoutes } from './brainRoutes.ts';
import { HttpError } from './errors.ts';

export async function buildBrainApi(deps: { config: RoverConfig; store: Store; logger: Logger }) {
  const app = fastify({ loggerInstance: deps.logger as FastifyBaseLogger, bodyLimit: deps.config.api.bodyLimitBytes, disableRequestLogging: true });
  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (error instanceof HttpError) return reply.status(error.statusCode).send({ error: error.code, message: error.message, details: error.details });
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) return reply.status(status).send({ error: error.code ?? 'bad_request', message: error.message });
    request.log.error({ err: error, url: request.url }, 'request failed');
    return reply.status(500).send({ error: 'internal', message: 'internal error; see the Brain log' });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );
  app.get('/healthz', async () => {
    await deps.store.ping();
    return { status: 'ok' };
  });
  registerBrainRoutes(app, deps.store);
  return app;
}
