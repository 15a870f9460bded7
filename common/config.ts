// The one config object: documented defaults, overridden by ROVER_* environment variables.
// Every timeout and interval of Rover's own processes lives here so tests can shrink them;
// per-job timings (heartbeats, rendezvous) are in the job spec.
import path from 'node:path';
import { z } from 'zod';

export const TASK_QUEUE_JOBS = 'rover-jobs';
export const TASK_QUEUE_BRAIN = 'rover-brain';

const port = z.coerce.number().int().min(0).max(65535);
const millis = z.coerce.number().int().positive();

const envSchema = z.object({
  ROVER_HOME: z.string().min(1).optional(),
  ROVER_TEMPORAL_ADDRESS: z.string().min(1).optional(),
  ROVER_TEMPORAL_PORT: port.default(7233),
  ROVER_UI_PORT: port.default(8233),
  ROVER_NAMESPACE: z.string().min(1).default('default'),
  ROVER_TASK_QUEUE: z.string().min(1).default(TASK_QUEUE_JOBS),
  ROVER_STORE_URL: z.string().min(1).optional(),
  ROVER_API_HOST: z.string().min(1).default('127.0.0.1'),
  ROVER_API_PORT: port.default(8470),
  ROVER_API_URL: z.string().url().optional(),
  ROVER_API_BODY_LIMIT: z.coerce.number().int().positive().default(1024 * 1024),
  ROVER_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  ROVER_WATCH_POLL_MS: millis.default(500),
  ROVER_WATCH_MAX_WAIT_MS: millis.default(10000),
  ROVER_SHUTDOWN_GRACE_MS: millis.default(10000),
  ROVER_CONTINUE_AS_NEW_EVENTS: z.coerce.number().int().positive().optional(),
});

export interface RoverConfig {
  /** State folder: SQLite files, logs, pid files. Default `.rover` under the working directory. */
  home: string;
  temporal: {
    /** host:port of the Temporal frontend. Default 127.0.0.1:<port>. */
    address: string;
    /** Frontend port `rover up` gives the dev server. Default 7233. */
    port: number;
    /** Web UI port `rover up` gives the dev server. Default 8233. */
    uiPort: number;
    namespace: string;
    /** Task queue of the job workflows. Default rover-jobs. */
    taskQueue: string;
  };
  /** `sqlite:<path>` (default `sqlite:<home>/rover.db`) or `mysql://user:pass@host:port/db`. */
  storeUrl: string;
  api: {
    host: string;
    port: number;
    /** URL agents and the CLI use to reach the API. Default http://<host>:<port>. */
    url: string;
    /** Largest accepted request body in bytes. Default 1 MiB. */
    bodyLimitBytes: number;
  };
  logLevel: string;
  timing: {
    /** How often watchNodes polls the event log. Default 500 ms. */
    watchPollMs: number;
    /** Longest one watchNodes call waits before returning an empty batch. Default 10 s. */
    watchMaxWaitMs: number;
    /** SIGTERM → SIGKILL grace for processes Rover stops. Default 10 s. */
    shutdownGraceMs: number;
  };
  /** Force continue-as-new after this many history events (tests); else the server's suggestion. */
  continueAsNewAfterEvents?: number;
}

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): RoverConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid environment: ${issues}`);
  }
  const e = parsed.data;
  const home = path.resolve(cwd, e.ROVER_HOME ?? '.rover');
  return {
    home,
    temporal: {
      address: e.ROVER_TEMPORAL_ADDRESS ?? `127.0.0.1:${e.ROVER_TEMPORAL_PORT}`,
      port: e.ROVER_TEMPORAL_PORT,
      uiPort: e.ROVER_UI_PORT,
      namespace: e.ROVER_NAMESPACE,
      taskQueue: e.ROVER_TASK_QUEUE,
    },
    storeUrl: e.ROVER_STORE_URL ?? `sqlite:${path.join(home, 'rover.db')}`,
    api: {
      host: e.ROVER_API_HOST,
      port: e.ROVER_API_PORT,
      url: e.ROVER_API_URL ?? `http://${e.ROVER_API_HOST}:${e.ROVER_API_PORT}`,
      bodyLimitBytes: e.ROVER_API_BODY_LIMIT,
    },
    logLevel: e.ROVER_LOG_LEVEL,
    timing: {
      watchPollMs: e.ROVER_WATCH_POLL_MS,
      watchMaxWaitMs: e.ROVER_WATCH_MAX_WAIT_MS,
      shutdownGraceMs: e.ROVER_SHUTDOWN_GRACE_MS,
    },
    continueAsNewAfterEvents: e.ROVER_CONTINUE_AS_NEW_EVENTS,
  };
}
