// The one config object: documented defaults, overridden by ROVER_* environment variables.
// Every timeout and interval of Rover's own processes lives here so tests can shrink them;
// per-job timings (heartbeats, rendezvous) are in the job spec.
import path from 'node:path';
import { z } from 'zod';
import { parseApiUrls } from './apiUrls.ts';

export const TASK_QUEUE_JOBS = 'rover-jobs';
export const TASK_QUEUE_BRAIN = 'rover-brain';

const port = z.coerce.number().int().min(0).max(65535);
const millis = z.coerce.number().int().positive();

const envSchema = z.object({
  ROVER_HOME: z.string().min(1).optional(),
  ROVER_TEMPORAL_ADDRESS: z.string().min(1).optional(),
  ROVER_TEMPORAL_PORT: port.default(7233),
  ROVER_TEMPORAL_TLS: z.enum(['true', 'false']).optional(),
  ROVER_TEMPORAL_TLS_CA_FILE: z.string().min(1).optional(),
  ROVER_TEMPORAL_TLS_CERT_FILE: z.string().min(1).optional(),
  ROVER_TEMPORAL_TLS_KEY_FILE: z.string().min(1).optional(),
  ROVER_TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  ROVER_TEMPORAL_API_KEY: z.string().min(1).optional(),
  ROVER_TEMPORAL_API_KEY_FILE: z.string().min(1).optional(),
  ROVER_UI_PORT: port.default(8233),
  ROVER_NAMESPACE: z.string().min(1).default('default'),
  ROVER_TASK_QUEUE: z.string().min(1).default(TASK_QUEUE_JOBS),
  ROVER_STORE_URL: z.string().min(1).optional(),
  ROVER_API_HOST: z.string().min(1).default('127.0.0.1'),
  ROVER_API_PORT: port.default(8470),
  /** One URL, or several API replicas separated by commas (common/apiUrls.ts). */
  ROVER_API_URL: z
    .string()
    .transform((raw, ctx) => {
      try {
        return parseApiUrls(raw);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  ROVER_API_BODY_LIMIT: z.coerce.number().int().positive().default(1024 * 1024),
  ROVER_API_MAX_IN_FLIGHT: z.coerce.number().int().positive().default(256),
  ROVER_API_MAX_LAG_MS: millis.default(1000),
  ROVER_OPERATOR_TOKEN: z.string().min(16, 'must be at least 16 characters (e.g. `openssl rand -hex 32`)').optional(),
  ROVER_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  ROVER_WATCH_POLL_MS: millis.default(500),
  // The job workflow's watchNodes call times out after 2 h (workflows/job/elasticJob.ts): at most 1 h.
  ROVER_WATCH_COALESCE_MS: millis.default(600_000),
  ROVER_WATCH_MAX_WAIT_MS: millis.max(3_600_000, 'must be at most 3600000 (1 h): the watch activity times out at 2 h').default(3_600_000),
  ROVER_SHUTDOWN_GRACE_MS: millis.default(10000),
  ROVER_TEARDOWN_RETRY_MS: millis.default(60_000),
  ROVER_CONTINUE_AS_NEW_EVENTS: z.coerce.number().int().positive().optional(),
  ROVER_WORKER_METRICS_ADDRESS: z
    .string()
    .regex(/^(off|[^\s:]+:\d{1,5})$/, 'must be host:port (e.g. 127.0.0.1:8472) or off')
    .default('127.0.0.1:8472'),
  ROVER_BRAIN_HOST: z.string().min(1).optional(),
  ROVER_BRAIN_PORT: port.default(8471),
  ROVER_BRAIN_URL: z.string().url().optional(),
  ROVER_BRAIN_TASK_QUEUE: z.string().min(1).default(TASK_QUEUE_BRAIN),
  ROVER_BRAIN_SOURCES: z.string().min(1).optional(),
  ROVER_BRAIN_SYNC_INTERVAL_MS: millis.default(30_000),
  ROVER_METRICS_RETENTION_MS: millis.default(7 * 24 * 3600 * 1000),
  ROVER_RAY_AUTH_TOKEN: z.string().min(1).optional(),
  RAY_AUTH_TOKEN: z.string().optional(),
  RAY_AUTH_TOKEN_PATH: z.string().optional(),
  ROVER_RAY_AGENT_BUNDLE: z.string().min(1).optional(),
  ROVER_RAY_AGENT_SHIPPING: z.enum(['path', 'upload']).default('path'),
  ROVER_RAY_NODE_BINARY: z.string().min(1).optional(),
  ROVER_RAY_POLL_MS: millis.default(2000),
  ROVER_RAY_REQUEST_TIMEOUT_MS: millis.default(10000),
  ROVER_RAY_RETRY_MAX_MS: millis.default(30000),
  ROVER_KUBECONFIG: z.string().min(1).optional(),
  ROVER_KUBERNETES_IN_CLUSTER: z.enum(['true', 'false']).default('false'),
  ROVER_K8S_AGENT_COMMAND: z
    .string()
    .default('["node","--import","tsx","/opt/rover/agent/main.ts"]')
    .transform((v, ctx) => {
      try {
        const cmd: unknown = JSON.parse(v);
        if (Array.isArray(cmd) && cmd.length > 0 && cmd.every((c) => typeof c === 'string')) return cmd as string[];
      } catch { /* reported below */ }
      ctx.addIssue({ code: 'custom', message: 'must be a JSON array of strings, e.g. ["node","/opt/rover/agent.mjs"]' });
      return z.NEVER;
    }),
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
    /**
     * TLS to a secured cluster: on when ROVER_TEMPORAL_TLS=true or any ROVER_TEMPORAL_TLS_* file is
     * set. Files are PEM paths; cert and key together give mutual TLS. Absent: plain connection.
     */
    tls?: { caFile?: string; certFile?: string; keyFile?: string; serverName?: string };
    /** API key sent as `authorization: Bearer …` (ROVER_TEMPORAL_API_KEY). */
    apiKey?: string;
    /** File holding the API key (ROVER_TEMPORAL_API_KEY_FILE), read at connect time. */
    apiKeyFile?: string;
  };
  /** `sqlite:<path>` (default `sqlite:<home>/rover.db`) or `mysql://user:pass@host:port/db`. */
  storeUrl: string;
  api: {
    host: string;
    port: number;
    /** URL the CLI and tests use to reach the API: the first of `urls`. */
    url: string;
    /** Every API replica, for agents (ROVER_API_URL, comma-separated). Default [http://<host>:<port>]. */
    urls: string[];
    /** Largest accepted request body in bytes. Default 1 MiB. */
    bodyLimitBytes: number;
    /**
     * Requests one API process works on at once (long polls that wait excluded); above it a new
     * request gets 429 with Retry-After (api/overload.ts). Default 256.
     */
    maxInFlight: number;
    /**
     * A new request gets 429 too while the API's event loop has not come round for longer than
     * this (it is working through a backlog of requests; api/overload.ts). Default 1 s.
     */
    maxLagMs: number;
  };
  /**
   * Secret of the operator (the `rover brain …` commands, the worker's Brain requests): the Brain
   * answers about any job to it. ROVER_OPERATOR_TOKEN; unset, Rover's own processes share one
   * generated into <home>/operator-token (common/operatorToken.ts), so a one-machine stack needs
   * nothing. Never given to agents or trainers: they hold only their job's token.
   */
  operatorToken: string | undefined;
  logLevel: string;
  timing: {
    /** How often watchNodes polls the event log. Default 500 ms. */
    watchPollMs: number;
    /**
     * Longest one watchNodes call waits before returning an empty batch. Default 1 h (at most 1 h):
     * each return adds ~6 history events, so an idle job adds ~6 events an hour.
     */
    watchMaxWaitMs: number;
    /** Longest a progress event (checkpoint committed, epoch done) waits in watchNodes for others. Default 10 min. */
    watchCoalesceMs: number;
    /** SIGTERM → SIGKILL grace for processes Rover stops. Default 10 s. */
    shutdownGraceMs: number;
    /**
     * How long a job's end keeps retrying a teardown that fails (cluster unreachable) before the
     * job ends anyway, its nodes left for the operator (logged). Default 60 s.
     */
    teardownRetryMs: number;
  };
  /** Force continue-as-new after this many history events (tests); else the server's suggestion. */
  continueAsNewAfterEvents?: number;
  /** host:port where the worker serves the Temporal SDK's Prometheus metrics; undefined: off. Default 127.0.0.1:8472. */
  workerMetricsAddress: string | undefined;
  brain: BrainServiceConfig;
  /** The ray backend (the dashboard address is per job: spec.ray.address). */
  ray: RayBackendConfig;
  kubernetes: KubernetesBackendConfig;
}

/** The kubernetes backend is registered when a kubeconfig is given or the worker runs in a pod. */
export interface KubernetesBackendConfig {
  /** Path of a kubeconfig file (ROVER_KUBECONFIG). */
  kubeconfig?: string;
  /** Use the pod's service account (ROVER_KUBERNETES_IN_CLUSTER=true). */
  inCluster: boolean;
  /** Command of the agent container in node pods (ROVER_K8S_AGENT_COMMAND, a JSON array). */
  agentCommand: string[];
}

export interface RayBackendConfig {
  /** Bearer token for clusters started with RAY_AUTH_MODE=token: ROVER_RAY_AUTH_TOKEN, else RAY_AUTH_TOKEN. */
  authToken?: string;
  /** File holding the token when no variable gives it (RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token if present). */
  authTokenPath?: string;
  /** Prebuilt agent bundle; default: built on first use into <home>/agent-bundle/. */
  agentBundle?: string;
  /** `path`: Ray nodes run the bundle from its path (shared filesystem); `upload`: shipped as the job's working_dir. */
  agentShipping: 'path' | 'upload';
  /** Node.js on the Ray nodes. Default: this process's node (right for a cluster on this machine). */
  nodeBinary: string;
  /** Ray job states are read at most this often; findDeadNodes answers from the cache between. Default 2 s. */
  pollMs: number;
  /** Timeout of one request to the dashboard. Default 10 s. */
  requestTimeoutMs: number;
  /** Longest pause between retries while the dashboard is unreachable. Default 30 s. */
  retryMaxMs: number;
}

export interface BrainServiceConfig {
  /** Where the standalone Brain process (`api/brainMain.ts`) listens. Default the API host, port 8471. */
  host: string;
  port: number;
  /** URL jobs use to reach the Brain API. Default the Rover API's URL (it serves /brain/v1 too). */
  url: string;
  /** Task queue of the brainConfigSync workflows. Default rover-brain. */
  taskQueue: string;
  /** Configuration sources, `name=kind:location,…` (brain/README.md). Default: the built-in YAML directory. */
  sources: string | undefined;
  /** How often each source is read. Default 30 s. */
  syncIntervalMs: number;
  /** Metrics samples and job history older than this are deleted. Default 7 days. */
  retentionMs: number;
}

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): RoverConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid environment: ${issues}`);
  }
  const e = parsed.data;
  if (Boolean(e.ROVER_TEMPORAL_TLS_CERT_FILE) !== Boolean(e.ROVER_TEMPORAL_TLS_KEY_FILE)) {
    throw new ConfigError('invalid environment: ROVER_TEMPORAL_TLS_CERT_FILE and ROVER_TEMPORAL_TLS_KEY_FILE go together (mutual TLS needs both); set both or neither');
  }
  if (e.ROVER_TEMPORAL_API_KEY && e.ROVER_TEMPORAL_API_KEY_FILE) {
    throw new ConfigError('invalid environment: set ROVER_TEMPORAL_API_KEY or ROVER_TEMPORAL_API_KEY_FILE, not both');
  }
  const tlsFiles = { caFile: e.ROVER_TEMPORAL_TLS_CA_FILE, certFile: e.ROVER_TEMPORAL_TLS_CERT_FILE, keyFile: e.ROVER_TEMPORAL_TLS_KEY_FILE, serverName: e.ROVER_TEMPORAL_TLS_SERVER_NAME };
  const tlsOn = e.ROVER_TEMPORAL_TLS === 'true' || Object.values(tlsFiles).some(Boolean);
  const home = path.resolve(cwd, e.ROVER_HOME ?? '.rover');
  const apiUrls = e.ROVER_API_URL ?? [`http://${e.ROVER_API_HOST}:${e.ROVER_API_PORT}`];
  return {
    home,
    temporal: {
      address: e.ROVER_TEMPORAL_ADDRESS ?? `127.0.0.1:${e.ROVER_TEMPORAL_PORT}`,
      port: e.ROVER_TEMPORAL_PORT,
      uiPort: e.ROVER_UI_PORT,
      namespace: e.ROVER_NAMESPACE,
      taskQueue: e.ROVER_TASK_QUEUE,
      ...(tlsOn && { tls: Object.fromEntries(Object.entries(tlsFiles).filter(([, v]) => v)) }),
      ...(e.ROVER_TEMPORAL_API_KEY && { apiKey: e.ROVER_TEMPORAL_API_KEY }),
      ...(e.ROVER_TEMPORAL_API_KEY_FILE && { apiKeyFile: e.ROVER_TEMPORAL_API_KEY_FILE }),
    },
    storeUrl: e.ROVER_STORE_URL ?? `sqlite:${path.join(home, 'rover.db')}`,
    api: {
      host: e.ROVER_API_HOST,
      port: e.ROVER_API_PORT,
      url: apiUrls[0]!,
      urls: apiUrls,
      bodyLimitBytes: e.ROVER_API_BODY_LIMIT,
      maxInFlight: e.ROVER_API_MAX_IN_FLIGHT,
      maxLagMs: e.ROVER_API_MAX_LAG_MS,
    },
    operatorToken: e.ROVER_OPERATOR_TOKEN,
    logLevel: e.ROVER_LOG_LEVEL,
    timing: {
      watchPollMs: e.ROVER_WATCH_POLL_MS,
      watchMaxWaitMs: e.ROVER_WATCH_MAX_WAIT_MS,
      watchCoalesceMs: e.ROVER_WATCH_COALESCE_MS,
      shutdownGraceMs: e.ROVER_SHUTDOWN_GRACE_MS,
      teardownRetryMs: e.ROVER_TEARDOWN_RETRY_MS,
    },
    continueAsNewAfterEvents: e.ROVER_CONTINUE_AS_NEW_EVENTS,
    workerMetricsAddress: e.ROVER_WORKER_METRICS_ADDRESS === 'off' ? undefined : e.ROVER_WORKER_METRICS_ADDRESS,
    brain: {
      host: e.ROVER_BRAIN_HOST ?? e.ROVER_API_HOST,
      port: e.ROVER_BRAIN_PORT,
      url: e.ROVER_BRAIN_URL ?? apiUrls[0]!,
      taskQueue: e.ROVER_BRAIN_TASK_QUEUE,
      sources: e.ROVER_BRAIN_SOURCES,
      syncIntervalMs: e.ROVER_BRAIN_SYNC_INTERVAL_MS,
      retentionMs: e.ROVER_METRICS_RETENTION_MS,
    },
    ray: {
      authToken: e.ROVER_RAY_AUTH_TOKEN ?? (e.RAY_AUTH_TOKEN || undefined),
      authTokenPath: e.RAY_AUTH_TOKEN_PATH || undefined,
      agentBundle: e.ROVER_RAY_AGENT_BUNDLE && path.resolve(cwd, e.ROVER_RAY_AGENT_BUNDLE),
      agentShipping: e.ROVER_RAY_AGENT_SHIPPING,
      nodeBinary: e.ROVER_RAY_NODE_BINARY ?? process.execPath,
      pollMs: e.ROVER_RAY_POLL_MS,
      requestTimeoutMs: e.ROVER_RAY_REQUEST_TIMEOUT_MS,
      retryMaxMs: e.ROVER_RAY_RETRY_MAX_MS,
    },
    kubernetes: {
      kubeconfig: e.ROVER_KUBECONFIG && path.resolve(cwd, e.ROVER_KUBECONFIG),
      inCluster: e.ROVER_KUBERNETES_IN_CLUSTER === 'true',
      agentCommand: e.ROVER_K8S_AGENT_COMMAND,
    },
  };
}
