// Activities of the elasticJob workflow: thin wrappers over the store and the cluster backends.
import { recordJobOutcome, recordJobStart } from './jobHistory.ts';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { withFailureTypes } from './failures.ts';
import type { RoverConfig } from '../common/config.ts';
import { parseJobEvents } from '../common/events.ts';
import type { JobActivities, LaunchedNode, NodeIdentity } from '../common/jobActivities.ts';
import { JOB_STATE_EVENT_KINDS, PROGRESS_EVENT_KINDS } from '../common/jobState.ts';
import type { Logger } from '../common/logger.ts';
import { clipPendingReason } from '../common/pendingNodes.ts';
import { decideRoundOpening, roundSpec } from '../common/roundOpening.ts';
import { isTerminalPhase, type JobPhase } from '../common/phases.ts';
import type { JobSpec } from '../common/spec/index.ts';
import { RATE_WINDOW_MS, stepRate, type StepReading } from '../common/trainingProgress.ts';
import { startJitterBoundMs } from '../common/startJitter.ts';
import { deriveJobToken, nodeToken, tokenDigest } from '../common/tokens.ts';
import { configurationError, notFoundError, UnhealableError } from '../common/unhealableErrors.ts';
import type { ClusterBackend, DeadNode } from '../cluster/types.ts';
import { noteStoreOutages } from './storeReachability.ts';
import { launchNode } from './nodeLaunch.ts';
import { LIVE_NODE_STATUSES, METRIC_STEP, nodeLeasePrefix, applyRoundOpening, recordNodeDown, resetJob, settleRound, type Job, type Node, type Store } from '../store/index.ts';

export interface JobActivityDeps {
  store: Store;
  /** Backends by name, in a fixed order. */
  backends: ClusterBackend[];
  config: RoverConfig;
  logger: Logger;
  clock?: () => number;
  /**
   * Aborted when the worker starts shutting down: a waiting watchNodes then returns what it has at
   * once, as at its max wait, instead of holding the worker's drain for its whole grace time.
   */
  draining?: AbortSignal;
}

/** How often a waiting watchNodes reads the step again for its heartbeat details (one indexed read). */
const LIVE_STEP_READ_MS = 10_000;

export function createJobActivities(deps: JobActivityDeps): JobActivities {
  const { config, logger } = deps;
  const now = deps.clock ?? Date.now;
  /** When this worker started: heartbeats missed while the control plane was down are not silence. */
  const startedAt = now();
  /** Nor are those missed while the store could not be reached (storeLostAt: the last call that failed so). */
  const { store, lostAt: storeLostAt } = noteStoreOutages(deps.store, now);

  const loadJob = async (jobId: string): Promise<Job> => {
    const job = await store.jobs.get(jobId);
    if (!job) throw notFoundError(`job ${jobId} is not in the store: the worker reads another store than the one the job was recorded in (check ROVER_STORE_URL on every worker), or its row was deleted`);
    return job;
  };
  /** The key job and node tokens are derived with: the operator token, which the API shares. */
  const signingKey = (): string => {
    if (!config.operatorToken) {
      throw configurationError('the worker has no signing key for job tokens: set ROVER_OPERATOR_TOKEN (the worker generates one into <home>/operator-token when started by `rover up`)');
    }
    return config.operatorToken;
  };
  /**
   * A node incarnation's token (common/tokens.ts nodeToken), from the run's stored token digest,
   * the same on every retry. A run from before tokens were derived used its key as the job token
   * itself (its digest says so): its agents keep getting that token.
   */
  const agentToken = (job: Job, runKey: string, node: NodeIdentity): string => {
    if (job.tokenDigest === tokenDigest(runKey)) return runKey;
    return nodeToken(signingKey(), job.tokenDigest, { node: node.id, incarnation: node.incarnation });
  };
  const backendFor = (spec: JobSpec): ClusterBackend => {
    const backend = deps.backends.find((b) => b.name === spec.spec.backend);
    if (!backend) throw configurationError(`backend ${spec.spec.backend} is not configured on this worker: ${BACKEND_SETUP[spec.spec.backend]}`);
    return backend;
  };

  return withFailureTypes<JobActivities>({
    async prepareJob({ jobId, workflowId, spec, runKey, targetNodes }) {
      // The run's job token: derived from its key, so retries agree; only its digest is kept, as
      // the run's identity and the root of its node tokens.
      const token = deriveJobToken(signingKey(), jobId, runKey);
      const fields = { workflowId, user: spec.metadata.user, group: spec.metadata.group ?? '', backend: spec.spec.backend, spec, token };
      await store.transaction(async (tx) => {
        const existing = await tx.jobs.get(jobId);
        if (existing && existing.tokenDigest !== tokenDigest(token)) {
          // A new run under a finished job's name: nothing of the old run is this run's.
          await resetJob(tx, jobId);
          await tx.jobs.replace({ id: jobId, phase: 'LAUNCHING', ...fields });
        } else if (!existing) {
          await tx.jobs.create({ id: jobId, phase: 'LAUNCHING', ...fields });
        }
        const latest = await tx.rendezvous.latestRound(jobId);
        await applyRoundOpening(tx, jobId, decideRoundOpening(latest, { kind: 'job_start', targetNodes }, roundSpec(spec.spec)));
      });
      await recordJobStart(store, jobId, tokenDigest(token), spec);
      logger.info({ jobId, workflowId, targetNodes }, 'job prepared');
    },

    async launchNodes({ jobId, runKey, nodes }) {
      // A launch scheduled by a workflow from before tokens were hashed carries no key and cannot start agents.
      if (!runKey) throw ApplicationFailure.nonRetryable(`launchNodes for job ${jobId} carries no run key (scheduled before tokens were stored hashed)`);
      const job = await loadJob(jobId);
      const backend = backendFor(job.spec);
      const launched: LaunchedNode[] = [];
      for (const n of nodes) {
        // A stop cancels a launch without waiting for it (the workflow ends the job at once, and
        // finishJob records the end first): an attempt still running then creates nothing more.
        const phase = (await store.jobs.get(jobId))?.phase as JobPhase | undefined;
        if (phase !== undefined && isTerminalPhase(phase)) {
          logger.info({ jobId, nodeId: n.id, incarnation: n.incarnation, phase }, 'job ended: node not launched');
          break;
        }
        // A Brain plan (OOM, initial) may give this incarnation other resources than the spec's.
        const resources = n.resources ? { ...job.spec.spec.resources, memory: n.resources.memoryBytes, cpu: n.resources.cpu } : job.spec.spec.resources;
        const result = await launchNode(store, backend, {
          jobId,
          nodeId: n.id,
          incarnation: n.incarnation,
          spec: job.spec,
          resources,
          ...(n.avoidHostOfIncarnation !== undefined && { avoidHostOfIncarnation: n.avoidHostOfIncarnation }),
          agentEnv: agentEnv(config, job, n, agentToken(job, runKey, n), nodes.length),
        });
        logger.info({ jobId, nodeId: n.id, incarnation: n.incarnation, pid: result.pid, created: result.created }, 'node launched');
        launched.push({ ...n, pid: result.pid });
      }
      return launched;
    },

    async removeNodes({ jobId, nodes }) {
      const job = await loadJob(jobId);
      await stopNodes(job, nodes);
    },

    async openRound({ jobId, targetNodes, cause }) {
      const job = await loadJob(jobId);
      return store.transaction(async (tx) => {
        const latest = await tx.rendezvous.latestRound(jobId);
        const decision = decideRoundOpening(latest, { kind: 'workflow', targetNodes, cause }, roundSpec(job.spec.spec));
        return (await applyRoundOpening(tx, jobId, decision))!;
      });
    },

    async watchNodes({ jobId, cursor, phase, stepKnown }) {
      const job = await loadJob(jobId);
      // The workflow owns the phase; the job row follows it here, where the workflow calls anyway,
      // so `rover_jobs{phase}` is right without an activity (and history events) per phase change.
      if (phase !== undefined && phase !== job.phase && !isTerminalPhase(job.phase as JobPhase)) await store.jobs.update(jobId, { phase });
      const backend = backendFor(job.spec);
      const ctx = Context.current();
      const deadline = now() + config.timing.watchMaxWaitMs;
      // The latest step reading rides on the activity's heartbeats too: the Web UI shows a pending
      // activity's heartbeat details live, and heartbeats add no history event.
      let reading: StepReading | undefined;
      for (;;) {
        const live = await reportDeadNodes(job, backend);
        await recordPendingReasons(job, backend, live.filter((n) => n.status === 'launching'));
        // Only what the workflow acts on wakes it: launches and stops it ordered itself do not, and
        // progress records wait a while for company (each return adds ~6 events to its history).
        const rows = await store.nodeEvents.list(jobId, { after: cursor, kinds: JOB_STATE_EVENT_KINDS, limit: 500 });
        const due = rows.some((r) => !PROGRESS_EVENT_KINDS.some((k) => k === r.kind) || now() - r.createdAt >= config.timing.watchCoalesceMs);
        if (!reading || now() - reading.readAt >= LIVE_STEP_READ_MS) reading = (await readStep(jobId, live)) ?? reading;
        const firstStep = stepKnown === false && reading !== undefined;
        if (due || firstStep || now() >= deadline || deps.draining?.aborted) {
          // Parsed once, here: the workflow trusts the types. A row no schema describes is
          // reported (logged here, a warning of the job there) and skipped, never guessed at.
          const { events, rejected } = parseJobEvents(rows);
          for (const r of rejected) logger.warn({ jobId, eventId: r.id, kind: r.kind, nodeId: r.nodeId, incarnation: r.incarnation, problem: r.problem }, 'node event skipped: its data does not fit its kind');
          const progress = await readStep(jobId, live);
          return { events, ...(rejected.length > 0 && { rejected }), ...(progress && { progress }) };
        }
        ctx.heartbeat({ cursor, ...(reading && { step: reading }) });
        await ctx.sleep(config.timing.watchPollMs);
      }
    },

    async expireRound({ jobId, round }) {
      const job = await loadJob(jobId);
      // The backend's words for the nodes that never came up, fresh, for the failure reason.
      await refreshPendingReasons(job);
      const { nodes, rendezvous } = job.spec.spec;
      const rules = { unit: nodes.unit, lastCallTimeoutMs: rendezvous.lastCallTimeout, joinTimeoutMs: rendezvous.joinTimeout };
      const settled = await store.transaction((tx) => settleRound(tx, { jobId, round }, rules, now(), { source: 'worker' }));
      logger.info({ jobId, round, status: settled.status, ...(settled.status === 'failed' && { reason: settled.reason }) }, 'rendezvous join deadline checked');
      if (settled.status === 'open' || settled.status === 'failed') return settled;
      return { status: 'settled' };
    },

    async describePendingNodes({ jobId, nodes }) {
      const job = await loadJob(jobId);
      const pending = await refreshPendingReasons(job);
      return nodes.flatMap((n) => {
        const row = pending.find((p) => p.nodeId === n.id && p.incarnation === n.incarnation);
        return row ? [{ id: n.id, incarnation: n.incarnation, reason: row.pendingReason }] : [];
      });
    },

    async finishJob({ jobId, phase, reason }) {
      const job = await store.jobs.get(jobId);
      if (!job) {
        // prepareJob never recorded it (the job failed before): nothing was launched, nothing to tear down.
        logger.warn({ jobId, phase, reason }, 'job finished without a row in the store');
        return null;
      }
      // Record the phase first: agents asking for a heartbeat are told to stop.
      await store.jobs.update(jobId, { phase, reason, endedAt: now() });
      await recordJobOutcome(store, job, phase, now());
      try {
        const live = await store.nodes.listByJob(jobId, { statuses: ['pending', ...LIVE_NODE_STATUSES] });
        await stopNodes(job, live.map((n) => ({ id: n.nodeId, incarnation: n.incarnation })));
        // A backend this worker lacks launched nothing here: nothing to release.
        await deps.backends.find((b) => b.name === job.spec.spec.backend)?.releaseJob?.(jobId);
      } catch (err) {
        // The job ends anyway when retrying cannot help: an unhealable error (a permission the
        // cluster refuses), or one that kept failing for ROVER_TEARDOWN_RETRY_MS since the end began.
        const endingForMs = Date.now() - endScheduledAt();
        if (!(err instanceof UnhealableError) && endingForMs < config.timing.teardownRetryMs) throw err;
        logger.error({ jobId, phase, endingForMs, err: String(err) }, 'job teardown incomplete: its nodes may still run on the cluster; delete them by hand');
      }
      logger.info({ jobId, phase, reason }, 'job finished');
      // Once per job: every node row, the ended ones' final steps included.
      const steps = (await store.nodes.listByJob(jobId)).flatMap((n) => (n.step === null || n.step === undefined ? [] : [n.step]));
      return steps.length === 0 ? null : { step: Math.max(...steps), stepsPerSecond: null, readAt: now() };
    },
  });

  async function stopNodes(job: Job & { spec: JobSpec }, nodes: NodeIdentity[]): Promise<void> {
    if (nodes.length === 0) return;
    const backend = backendFor(job.spec);
    await Promise.all(
      nodes.map(async (n) => {
        const key = { jobId: job.id, nodeId: n.id, incarnation: n.incarnation };
        const node = await store.nodes.get(key);
        if (!node) return;
        // Recorded stopped before it is stopped: the liveness watch must not take the agent's
        // exit for a loss (node_lost after node_stopped), and its heartbeats are answered 'stop'.
        if (node.status !== 'stopped') {
          await store.transaction(async (tx) => {
            await tx.nodes.update(key, { status: 'stopped', endedAt: node.endedAt ?? now() });
            await tx.nodeEvents.append({ ...key, kind: 'node_stopped', data: {} });
            // Its trainers' shard leases go back to the queue now, not when they expire.
            await tx.shards.releaseByPrefix(job.id, nodeLeasePrefix(n.id, n.incarnation));
          });
        }
        await backend.deleteNode(node, config.timing.shutdownGraceMs);
      }),
    );
  }

  /**
   * The highest step of the running nodes (rows this poll read anyway) and rank 0's step rate
   * over the last minute: one indexed read of one node's samples, whatever the job's size.
   */
  async function readStep(jobId: string, live: Node[]): Promise<StepReading | undefined> {
    const running = live.filter((n) => n.status === 'running' && n.step !== null && n.step !== undefined);
    if (running.length === 0) return undefined;
    const step = Math.max(...running.map((n) => n.step!));
    // Ranks step together in data-parallel jobs: rank 0's node (any running one else) sets the pace.
    const pacer = running.find((n) => n.rank === 0) ?? running[0]!;
    const readAt = now();
    const samples = await store.metrics.list(jobId, METRIC_STEP, { nodeId: pacer.nodeId, since: readAt - RATE_WINDOW_MS });
    const stepsPerSecond = stepRate(samples.filter((s) => s.incarnation === pacer.incarnation));
    return { step, stepsPerSecond: stepsPerSecond === null ? null : Number(stepsPerSecond.toPrecision(6)), readAt };
  }

  /** The job's launched, unregistered nodes with the backend's current reasons. */
  async function refreshPendingReasons(job: Job & { spec: JobSpec }): Promise<Node[]> {
    const launching = await store.nodes.listByJob(job.id, { statuses: ['launching'] });
    return recordPendingReasons(job, backendFor(job.spec), launching);
  }

  /**
   * Keeps the pending reason of launched, unregistered nodes current in their rows, for `rover
   * status` and the reasons of deadlines; writes only what changed (never workflow history).
   * Returns the nodes with their reasons. A backend that cannot answer now changes nothing.
   */
  async function recordPendingReasons(job: Job, backend: ClusterBackend, launching: Node[]): Promise<Node[]> {
    if (!backend.describePending || launching.length === 0) return launching;
    const described = await backend.describePending(launching).catch((err: unknown) => {
      logger.warn({ jobId: job.id, err: String(err) }, 'cannot read why nodes are pending');
      return undefined;
    });
    if (!described) return launching;
    return Promise.all(
      launching.map(async (node) => {
        const said = described.find((d) => d.node.nodeId === node.nodeId && d.node.incarnation === node.incarnation);
        const pendingReason = said ? clipPendingReason(said.reason) : null;
        if (pendingReason === node.pendingReason) return node;
        await store.nodes.update({ jobId: job.id, nodeId: node.nodeId, incarnation: node.incarnation }, { pendingReason });
        if (pendingReason) logger.info({ jobId: job.id, nodeId: node.nodeId, incarnation: node.incarnation, pendingReason }, 'node pending');
        return { ...node, pendingReason };
      }),
    );
  }

  /**
   * Appends node_lost for nodes whose process is gone or whose heartbeats stopped, once each;
   * returns the nodes still live.
   */
  async function reportDeadNodes(job: Job & { spec: JobSpec }, backend: ClusterBackend): Promise<Node[]> {
    const live = await store.nodes.listByJob(job.id, { statuses: LIVE_NODE_STATUSES });
    const dead = await backend.findDeadNodes(live);
    // Agents keep training through a control-plane outage (`rover down --keep-jobs`, a crash) and
    // heartbeat again once the API and the store are back: judge silence only after a whole
    // heartbeatTimeout up, this worker's and the store's.
    const cutoff = now() - job.spec.spec.faultTolerance.heartbeatTimeout;
    const silent = cutoff >= Math.max(startedAt, storeLostAt()) ? await store.nodes.listSilentSince(job.id, cutoff, ['running']) : [];
    const lost = new Map<string, DeadNode>();
    for (const d of dead) lost.set(`${d.node.nodeId}/${d.node.incarnation}`, d);
    for (const node of silent) {
      const id = `${node.nodeId}/${node.incarnation}`;
      if (!lost.has(id)) lost.set(id, { node, reason: `no heartbeat for ${job.spec.spec.faultTolerance.heartbeatTimeout} ms` });
    }
    for (const { node, reason, exitCode, oomKilled, platformCause } of lost.values()) {
      const key = { jobId: job.id, nodeId: node.nodeId, incarnation: node.incarnation };
      const recorded = await store.transaction((tx) => recordNodeDown(tx, key, { reason, exitCode, oomKilled, platformCause }, now()));
      if (!recorded) continue;
      logger.warn({ jobId: job.id, nodeId: node.nodeId, incarnation: node.incarnation, reason }, 'node lost');
    }
    return live.filter((n) => !lost.has(`${n.nodeId}/${n.incarnation}`));
  }
}

/** When the running activity was first scheduled (its retries keep that time); now outside an activity. */
function endScheduledAt(): number {
  try {
    return Context.current().info.scheduledTimestampMs;
  } catch {
    return Date.now();
  }
}

/** What a worker needs for each backend, for the error of a job whose backend it lacks. */
const BACKEND_SETUP: Record<JobSpec['spec']['backend'], string> = {
  local: 'start the worker with the local backend (workers/main.ts always registers it)',
  kubernetes: 'give the worker a cluster with ROVER_KUBECONFIG=<kubeconfig file> or ROVER_KUBERNETES_IN_CLUSTER=true (in a pod), or submit the job with another spec.backend',
  ray: 'start the worker with the ray backend (workers/main.ts always registers it)',
};

/**
 * The agent's environment: everything it needs to find the master and run its processes.
 * `startedTogether`: the nodes of this launch, which bounds the agent's start jitter.
 */
function agentEnv(config: RoverConfig, job: Job & { spec: JobSpec }, node: NodeIdentity, token: string, startedTogether: number): Record<string, string> {
  const s = job.spec.spec;
  return {
    ROVER_API_URL: config.api.urls.join(','),
    ROVER_JOB: job.id,
    ROVER_NODE: String(node.id),
    ROVER_INCARNATION: String(node.incarnation),
    ROVER_TOKEN: token,
    ROVER_NPROC_PER_NODE: String(s.nprocPerNode),
    ROVER_ENTRYPOINT: JSON.stringify(s.entrypoint),
    ROVER_MAX_PROCESS_RESTARTS: String(s.faultTolerance.maxProcessRestarts),
    ROVER_HEARTBEAT_INTERVAL_MS: String(s.faultTolerance.heartbeatInterval),
    ROVER_SHUTDOWN_GRACE_MS: String(config.timing.shutdownGraceMs),
    ROVER_CHECKPOINT_DIR: s.checkpoint.dir ?? '',
    ROVER_CHECKPOINT_FLASH: String(s.checkpoint.flash),
    ROVER_LOG_LEVEL: config.logLevel,
    ROVER_START_JITTER_MS: String(startJitterBoundMs(startedTogether)),
  };
}
