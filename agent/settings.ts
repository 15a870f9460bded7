// The agent's settings, parsed from the environment its cluster backend gives it.
import path from 'node:path';
import { z } from 'zod';
import { parseApiUrls } from '../common/apiUrls.ts';
import { MAX_START_JITTER_MS } from '../common/startJitter.ts';

export const entrypointSchema = z.object({
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).default({}),
  /** Working directory of the training processes; default the agent's. */
  workdir: z.string().min(1).optional(),
  /** Modules warm standby processes import ahead of a round (agent/standby.ts); none: every start is cold. */
  preload: z.array(z.string().min(1)).optional(),
});
export type Entrypoint = z.infer<typeof entrypointSchema>;

const text = () => z.string({ error: (issue) => (issue.input === undefined ? 'is not set' : undefined) }).min(1);
const integer = (min: number) =>
  text()
    .regex(/^\d+$/, `must be an integer ≥ ${min}`)
    .transform(Number)
    .refine((n) => n >= min, `must be an integer ≥ ${min}`);
const json = text().transform((raw, ctx) => {
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `is not valid JSON (${(err as Error).message})` });
    return z.NEVER;
  }
});

const envSchema = z.object({
  /** One URL, or several API replicas separated by commas. */
  ROVER_API_URL: z.string({ error: 'is not set' }).transform((raw, ctx) => {
    try {
      return parseApiUrls(raw);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `must be a URL or a comma-separated list of URLs: ${(err as Error).message}` });
      return z.NEVER;
    }
  }),
  ROVER_JOB: text(),
  ROVER_NODE: integer(0),
  ROVER_INCARNATION: integer(0),
  ROVER_TOKEN: text(),
  ROVER_NPROC_PER_NODE: integer(1),
  /** JSON {command, args, env, workdir?}. */
  ROVER_ENTRYPOINT: json.pipe(entrypointSchema),
  ROVER_MAX_PROCESS_RESTARTS: integer(0),
  ROVER_HEARTBEAT_INTERVAL_MS: integer(1).default(5000),
  ROVER_SHUTDOWN_GRACE_MS: integer(0).default(10000),
  /** Address other nodes reach this one at (MASTER_ADDR if it gets group rank 0). */
  ROVER_HOST: text().default('127.0.0.1'),
  ROVER_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Node memory the local backend enforces (bytes), split evenly over the training processes. */
  ROVER_MEMORY_LIMIT_BYTES: integer(1).optional(),
  /** The job's checkpoint folder (spec.checkpoint.dir); empty or unset: the clients' default. */
  ROVER_CHECKPOINT_DIR: z.string().optional(),
  /** Bound of the random delay before the first request (agent/apiClient.ts startDelayMs); 0: none. */
  ROVER_START_JITTER_MS: integer(0).default(MAX_START_JITTER_MS),
});

export interface AgentSettings {
  /** The API replicas, in the order given (common/apiUrls.ts). */
  apiUrls: string[];
  job: string;
  node: number;
  incarnation: number;
  token: string;
  nprocPerNode: number;
  entrypoint: Entrypoint;
  /** Process failures this agent absorbs by restarting its group; one more fails the node. */
  maxProcessRestarts: number;
  heartbeatIntervalMs: number;
  /** SIGTERM → SIGKILL grace when stopping training processes. */
  shutdownGraceMs: number;
  host: string;
  logLevel: string;
  /** Memory of the node (bytes) to enforce on the training processes; unset: no limit. */
  memoryLimitBytes?: number | undefined;
  /**
   * The job's checkpoint folder as the training processes see it (relative: to their working
   * directory); the flash saver writes nothing outside it. Default, as in the clients:
   * .rover/checkpoints/<job>.
   */
  checkpointDir: string;
  /** The agent waits a random delay below this before its first request. Default 1 s; 0: none. */
  startJitterMs?: number;
}

export class AgentSettingsError extends Error {
  override name = 'AgentSettingsError';
}

/** Parses the agent's environment; throws AgentSettingsError naming every bad variable. */
export function parseAgentSettings(env: NodeJS.ProcessEnv): AgentSettings {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new AgentSettingsError(`invalid agent environment:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  return {
    apiUrls: e.ROVER_API_URL,
    job: e.ROVER_JOB,
    node: e.ROVER_NODE,
    incarnation: e.ROVER_INCARNATION,
    token: e.ROVER_TOKEN,
    nprocPerNode: e.ROVER_NPROC_PER_NODE,
    entrypoint: e.ROVER_ENTRYPOINT,
    maxProcessRestarts: e.ROVER_MAX_PROCESS_RESTARTS,
    heartbeatIntervalMs: e.ROVER_HEARTBEAT_INTERVAL_MS,
    shutdownGraceMs: e.ROVER_SHUTDOWN_GRACE_MS,
    host: e.ROVER_HOST,
    logLevel: e.ROVER_LOG_LEVEL,
    memoryLimitBytes: e.ROVER_MEMORY_LIMIT_BYTES,
    checkpointDir: e.ROVER_CHECKPOINT_DIR || path.join('.rover', 'checkpoints', e.ROVER_JOB),
    startJitterMs: e.ROVER_START_JITTER_MS,
  };
}
