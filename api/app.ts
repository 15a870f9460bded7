// What every Rover HTTP listener shares: JSON errors (4xx for bad requests, never a crash),
// a JSON 404, the body limit, and /healthz backed by the store.
import fastify, { type FastifyBaseLogger, type RouteOptions } from 'fastify';
import type { RoverConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import type { Store } from '../store/index.ts';
import { HttpError } from './errors.ts';
import { InFlightGate } from './overload.ts';

/**
 * Longest a client may take to send one request (Fastify's default is no limit). Bodies are small
 * JSON up to the body limit, so a slow sender only holds a socket. It bounds receiving the request
 * only: a long poll (api/longPoll.ts) holds its answer longer.
 */
const REQUEST_TIMEOUT_MS = 30_000;

export interface HttpAppDeps {
  config: RoverConfig;
  store: Store;
  logger: Logger;
  /** Called with each route as it is registered (api/fuzz.test.ts lists every route this way). */
  onRoute?: (route: RouteOptions) => void;
}

export function createHttpApp(deps: HttpAppDeps, name: string) {
  const app = fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.config.api.bodyLimitBytes,
    requestTimeout: REQUEST_TIMEOUT_MS,
    disableRequestLogging: true,
  });
  const { onRoute } = deps;
  if (onRoute) app.addHook('onRoute', (route) => onRoute(route));
  // 429 above the in-flight limit, and no work for clients that have gone (api/overload.ts).
  new InFlightGate({ maxInFlight: deps.config.api.maxInFlight, maxLagMs: deps.config.api.maxLagMs }).install(app);
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
    return reply.status(500).send({ error: 'internal', message: `internal error; see the ${name} log` });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );
  app.get('/healthz', async () => {
    await deps.store.ping();
    return { status: 'ok' };
  });
  return app;
}
