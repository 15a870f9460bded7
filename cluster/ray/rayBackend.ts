// Ray backend: a node is one Ray job (Jobs API of the dashboard) whose entrypoint runs the
// Rover agent with the node's environment. The submission id is fixed per (job run, node,
// incarnation), so a retried launch submits nothing new. An unreachable dashboard is never a
// verdict about a node: launches and stops throw (the activity retries them with backoff) and
// findDeadNodes keeps answering from what it last saw.
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { RoverConfig } from '../../common/config.ts';
import type { Logger } from '../../common/logger.ts';
import type { RayOptions } from '../../common/spec/index.ts';
import { DEFAULT_RAY_ADDRESS } from '../../common/spec/schema.ts';
import { configurationError, notFoundError, permissionError } from '../../common/unhealableErrors.ts';
import type { Node, Store } from '../../store/index.ts';
import { nodeLogPath } from '../local/localBackend.ts';
import type { ClusterBackend, DeadNode, LaunchResult, NodeLaunch, PendingReason } from '../types.ts';
import { AGENT_BUNDLE_FILE, buildAgentBundle, describeAgentBundle, type AgentBundle } from './agentBundle.ts';
import { RayApiError, RayAuthError, RayJobsClient, RayUnreachableError, TERMINAL_STATUSES, type RayJobInfo } from './jobsApi.ts';
import { logTail, nodeSubmission, runTag, submissionId, type AgentShipping } from './submission.ts';
import { createZip } from './zip.ts';

interface JobContext {
  client: RayJobsClient;
  runTag: string;
  ray: RayOptions;
}

interface CachedStatus {
  at: number;
  /** null: Ray does not know the job (deleted from outside). */
  info: RayJobInfo | null;
}

const NO_RAY_OPTIONS: RayOptions = { address: DEFAULT_RAY_ADDRESS, runtimeEnv: {}, resources: {} };

/** Where a Ray job's log is served; stored as the node's log path. */
export function rayLogUrl(address: string, id: string): string {
  return `${address.replace(/\/+$/, '')}/api/jobs/${id}/logs`;
}

export class RayBackend implements ClusterBackend {
  readonly name = 'ray' as const;
  private readonly statuses = new Map<string, CachedStatus>();
  private readonly refreshing = new Set<string>();
  /** Ray jobs whose log this process appended to the node's log file already. */
  private readonly archived = new Set<string>();
  /** Per dashboard address: no request before `until` after failures; `delayMs` doubles. */
  private readonly backoff = new Map<string, { until: number; delayMs: number }>();
  private bundle?: Promise<AgentBundle>;
  private readonly token: string | undefined;

  constructor(
    private readonly store: Store,
    private readonly config: RoverConfig,
    private readonly logger: Logger,
  ) {
    this.token = resolveRayToken(config);
  }

  async ensureNode(launch: NodeLaunch, current: Node): Promise<LaunchResult> {
    const ctx = await this.jobContext(launch.jobId);
    if (!ctx) throw notFoundError(`job ${launch.jobId} is not in the store: the worker reads another store than the one the job was recorded in (check ROVER_STORE_URL on every worker)`);
    const key = { jobId: launch.jobId, nodeId: launch.nodeId, incarnation: launch.incarnation };
    if (current.logPath !== null) return { pid: null, logPath: current.logPath, host: null, created: false };
    const id = submissionId(launch.jobId, ctx.runTag, launch.nodeId, launch.incarnation);
    const created = await this.call(ctx.client, async () => {
      const submission = nodeSubmission({
        ...key,
        runTag: ctx.runTag,
        resources: launch.resources,
        ray: ctx.ray,
        agentEnv: launch.agentEnv,
        nodeBinary: this.config.ray.nodeBinary,
        agent: await this.shipAgent(ctx.client),
      });
      return ctx.client.submit(submission);
    });
    const logPath = rayLogUrl(ctx.client.address, id);
    this.logger.info({ ...key, rayJob: id, created }, 'ray job submitted');
    // Recorded even when the submission existed: a launch that ended before recording it made it.
    // No host: a submission names no Ray node, Ray picks one when the job starts.
    return { pid: null, logPath, host: null, created, launched: { rayJob: id, address: ctx.client.address, logPath } };
  }

  async deleteNode(node: Node, graceMs: number): Promise<void> {
    const ctx = await this.jobContext(node.jobId);
    if (!ctx) return;
    const id = submissionId(node.jobId, ctx.runTag, node.nodeId, node.incarnation);
    const { client } = ctx;
    const info = await this.call(client, async () => {
      await client.stop(id);
      // Ray sends SIGTERM, then SIGKILL after its own grace; the agent passes SIGTERM on to its trainers.
      const deadline = Date.now() + graceMs + 15_000;
      for (;;) {
        const current = await client.get(id);
        if (!current || TERMINAL_STATUSES.includes(current.status) || Date.now() > deadline) return current;
        await new Promise((r) => setTimeout(r, 250));
      }
    });
    this.statuses.delete(id);
    if (!info) return;
    if (!TERMINAL_STATUSES.includes(info.status)) {
      this.logger.warn({ jobId: node.jobId, nodeId: node.nodeId, rayJob: id, status: info.status }, 'ray job did not stop in time; left for Ray to finish');
      return;
    }
    // Keep the log before Ray forgets it: `rover logs` reads finished nodes from here.
    const logs = this.archived.has(id) ? undefined : await this.call(client, () => client.logs(id));
    if (logs !== undefined) {
      this.archived.add(id); // a retry after a failed delete must not append it twice
      const file = nodeLogPath(this.config.home, node.jobId, node.nodeId);
      mkdirSync(path.dirname(file), { recursive: true });
      appendFileSync(file, `=== ray job ${id} (incarnation ${node.incarnation}, ${info.status}) ===\n${logs}${logs.endsWith('\n') || !logs ? '' : '\n'}`);
    }
    await this.call(client, () => client.delete(id));
  }

  async findDeadNodes(nodes: Node[]): Promise<DeadNode[]> {
    const dead: DeadNode[] = [];
    const stale: { ctx: JobContext; id: string }[] = [];
    const now = Date.now();
    const contexts = new Map<string, JobContext | undefined>();
    for (const node of nodes) {
      if (node.logPath === null) continue; // not submitted yet
      if (!contexts.has(node.jobId)) contexts.set(node.jobId, await this.jobContext(node.jobId));
      const ctx = contexts.get(node.jobId);
      if (!ctx) continue;
      const id = submissionId(node.jobId, ctx.runTag, node.nodeId, node.incarnation);
      const cached = this.statuses.get(id);
      if (!cached || now - cached.at >= this.config.ray.pollMs) stale.push({ ctx, id });
      if (!cached) continue;
      const verdict = deathOf(id, cached.info);
      if (verdict) dead.push({ node, ...verdict });
    }
    // Refresh in the background: a slow or paused dashboard never holds up the watcher.
    if (stale.length > 0) {
      this.refresh(stale).catch((err: unknown) => this.logger.warn({ err }, 'ray status refresh failed'));
    }
    return dead;
  }

  /**
   * From the status cache findDeadNodes keeps: a node whose Ray job is PENDING (waiting for
   * resources or its runtime_env), in Ray's words, or RUNNING while its agent has not registered.
   */
  async describePending(nodes: Node[]): Promise<PendingReason[]> {
    const pending: PendingReason[] = [];
    const contexts = new Map<string, JobContext | undefined>();
    for (const node of nodes) {
      if (node.logPath === null) {
        pending.push({ node, reason: 'not submitted to Ray yet' });
        continue;
      }
      if (!contexts.has(node.jobId)) contexts.set(node.jobId, await this.jobContext(node.jobId));
      const ctx = contexts.get(node.jobId);
      if (!ctx) continue;
      const info = this.statuses.get(submissionId(node.jobId, ctx.runTag, node.nodeId, node.incarnation))?.info;
      if (info?.status === 'PENDING') pending.push({ node, reason: `Ray job PENDING${info.message ? `: ${info.message}` : ''}` });
      else if (info?.status === 'RUNNING') pending.push({ node, reason: 'Ray job RUNNING; the agent has not registered with the Rover API yet' });
    }
    return pending;
  }

  private async refresh(stale: { ctx: JobContext; id: string }[]): Promise<void> {
    const todo = stale.filter(({ id }) => !this.refreshing.has(id));
    for (const { id } of todo) this.refreshing.add(id);
    try {
      await Promise.all(
        todo.map(async ({ ctx, id }) => {
          const info = await this.call(ctx.client, () => ctx.client.get(id)).catch(() => 'skip' as const);
          if (info === 'skip') return;
          const cached: CachedStatus = { at: Date.now(), info: info ?? null };
          // Keep the failure reason's log tail with the status, read once.
          if (info && (info.status === 'FAILED' || info.status === 'STOPPED')) {
            // Ray's message may carry 20,000 characters of log; keep its first line and our own tail.
            const logs = await ctx.client.logs(id).catch(() => undefined);
            const headline = (info.message ?? '').split('\n')[0] ?? '';
            info.message = logs ? `${headline}\n--- last log lines ---\n${logTail(logs)}` : headline;
          }
          this.statuses.set(id, cached);
        }),
      );
    } finally {
      for (const { id } of todo) this.refreshing.delete(id);
    }
  }

  /**
   * Runs one exchange with the dashboard. While it is unreachable, calls fail fast until the
   * backoff expires (doubling up to retryMaxMs); configuration errors become non-retryable.
   */
  private async call<T>(client: RayJobsClient, fn: () => Promise<T>): Promise<T> {
    const address = client.address;
    const pause = this.backoff.get(address);
    if (pause && Date.now() < pause.until) {
      throw new RayUnreachableError(`Ray dashboard ${address} unreachable; next try in ${pause.until - Date.now()} ms`);
    }
    try {
      const result = await fn();
      if (pause) {
        this.backoff.delete(address);
        this.logger.info({ address }, 'ray dashboard reachable again');
      }
      return result;
    } catch (err) {
      if (err instanceof RayUnreachableError) {
        const delayMs = Math.min((pause?.delayMs ?? 250) * 2, this.config.ray.retryMaxMs);
        this.backoff.set(address, { until: Date.now() + delayMs, delayMs });
        this.logger.warn({ address, retryInMs: delayMs, err: err.message }, 'ray dashboard unreachable; retrying');
        throw err;
      }
      // Retrying cannot heal a refused token or a request the dashboard rejects.
      if (err instanceof RayAuthError) throw permissionError(err.message);
      if (err instanceof RayApiError && err.status >= 400 && err.status < 500) throw configurationError(err.message);
      throw err;
    }
  }

  private async shipAgent(client: RayJobsClient): Promise<AgentShipping> {
    this.bundle ??= this.config.ray.agentBundle
      ? Promise.resolve(describeAgentBundle(this.config.ray.agentBundle))
      : buildAgentBundle(path.join(this.config.home, 'agent-bundle', AGENT_BUNDLE_FILE));
    const bundle = await this.bundle.catch((err: unknown) => {
      this.bundle = undefined;
      throw err;
    });
    if (this.config.ray.agentShipping === 'path') return { mode: 'path', bundlePath: bundle.path };
    // Content-addressed, like Ray's own packages: a changed agent is a new package.
    const packageUri = `gcs://_ray_pkg_${bundle.sha256.slice(0, 32)}.zip`;
    if (!(await client.packageExists(packageUri))) {
      await client.uploadPackage(packageUri, createZip([{ name: AGENT_BUNDLE_FILE, data: readFileSync(bundle.path) }]));
      this.logger.info({ address: client.address, packageUri }, 'agent bundle uploaded to ray');
    }
    return { mode: 'upload', packageUri, fileName: AGENT_BUNDLE_FILE };
  }

  private async jobContext(jobId: string): Promise<JobContext | undefined> {
    const job = await this.store.jobs.get(jobId);
    if (!job) return undefined;
    const ray = job.spec.spec.ray ?? NO_RAY_OPTIONS;
    return { client: this.client(ray.address), runTag: runTag(job.createdAt), ray };
  }

  private readonly clients = new Map<string, RayJobsClient>();
  private client(address: string): RayJobsClient {
    let client = this.clients.get(address);
    if (!client) {
      client = new RayJobsClient({ address, token: this.token, timeoutMs: this.config.ray.requestTimeoutMs });
      this.clients.set(address, client);
    }
    return client;
  }
}

/** A Ray job state that means the node is gone, with why; undefined while it may still run. */
function deathOf(id: string, info: RayJobInfo | null): Omit<DeadNode, 'node'> | undefined {
  if (info === null) return { reason: `ray job ${id} no longer exists (deleted outside Rover)` };
  if (info.status === 'FAILED') return { reason: `ray job ${id} failed: ${info.message ?? ''}`.trim(), exitCode: info.driver_exit_code ?? null };
  if (info.status === 'STOPPED') return { reason: `ray job ${id} was stopped outside Rover: ${info.message ?? ''}`.trim() };
  // SUCCEEDED: the agent ended normally and reported it; PENDING/RUNNING: alive.
  return undefined;
}

/** The dashboard token: from the config's variables, else the token file (Ray's default path if present). */
export function resolveRayToken(config: RoverConfig): string | undefined {
  if (config.ray.authToken) return config.ray.authToken;
  const file = config.ray.authTokenPath ?? path.join(homedir(), '.ray', 'auth_token');
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    if (config.ray.authTokenPath) throw new Error(`RAY_AUTH_TOKEN_PATH: cannot read ${config.ray.authTokenPath}`);
    return undefined;
  }
}
