// The job workflow's deadlines fire with no agent alive: today's workflow and job activities, a
// real store, the suite's Temporal server, and a backend whose nodes never start (as pods that
// stay Unschedulable would), so nothing ever calls the API. The policy is in
// common/jobStatePending.test.ts; this proves the timers, the activities and the store together.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobActivities } from '../activities/index.ts';
import { withPendingReasons } from '../cli/shardProgress.ts';
import { formatJobStatus } from '../cli/format.ts';
import type { ClusterBackend, DeadNode, LaunchResult, NodeLaunch, PendingReason } from '../cluster/types.ts';
import { loadConfig, type RoverConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import { openStore, type Node, type Store } from '../store/index.ts';
import { createJobWorker } from '../workers/jobWorker.ts';
import { statusQuery, type JobStatus } from '../workflows/job/messages.ts';
import { jobOutcome, taskQueueFor, temporalClient, waitUntil, workerConnection, workflowBundle } from './helpers.ts';

/** Nodes are created (rows, events) and never start: every one is pending for `reason`. */
class NeverStartingBackend implements ClusterBackend {
  readonly name = 'local' as const;
  launched: string[] = [];
  constructor(private readonly reason: string) {}
  async ensureNode(launch: NodeLaunch): Promise<LaunchResult> {
    const incarnation = `${launch.nodeId}#${launch.incarnation}`;
    if (this.launched.includes(incarnation)) return { pid: null, logPath: null, host: null, created: false };
    this.launched.push(incarnation);
    return { pid: null, logPath: null, host: null, created: true, launched: {} };
  }
  async deleteNode(): Promise<void> {}
  async findDeadNodes(): Promise<DeadNode[]> {
    return [];
  }
  async describePending(nodes: Node[]): Promise<PendingReason[]> {
    return nodes.map((node) => ({ node, reason: this.reason }));
  }
}

const UNSCHEDULABLE = 'pod not scheduled (PodScheduled False): Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu';
const IMAGE_PULL = 'container agent waiting: ImagePullBackOff: Back-off pulling image "rover:missing"';

function spec(name: string, o: { nodes: number; min: number; joinTimeout: string; pendingTimeout: string; maxNodeRelaunches: number }): JobSpec {
  const parsed = parseJobSpec({
    metadata: { name, user: 'tester' },
    spec: {
      nodes: { min: o.min, max: o.nodes, initial: o.nodes },
      nprocPerNode: 1,
      entrypoint: { command: 'python3', args: ['train.py'], workdir: os.tmpdir() },
      faultTolerance: { maxNodeRelaunches: o.maxNodeRelaunches, heartbeatInterval: '1s', heartbeatTimeout: '10m', pendingTimeout: o.pendingTimeout },
      rendezvous: { lastCallTimeout: '1s', joinTimeout: o.joinTimeout },
    },
  });
  if (!parsed.ok) throw new Error(`bad test spec: ${JSON.stringify(parsed.errors)}`);
  return parsed.spec;
}

describe('job deadlines with no agent alive', () => {
  let home: string;
  let config: RoverConfig;
  let store: Store;
  let client: Client;
  let closeClient: () => Promise<void>;
  let connection: NativeConnection;

  beforeAll(async () => {
    home = mkdtempSync(path.join(os.tmpdir(), 'rover-deadlines-'));
    config = loadConfig({ ROVER_OPERATOR_TOKEN: 'signing-key-of-the-deadline-tests', ROVER_HOME: home, ROVER_STORE_URL: `sqlite:${path.join(home, 'rover.db')}`, ROVER_WATCH_POLL_MS: '100', ROVER_WATCH_MAX_WAIT_MS: '1000', ROVER_LOG_LEVEL: 'warn' });
    store = await openStore(config.storeUrl);
    ({ client, close: closeClient } = await temporalClient());
    connection = await workerConnection();
  });
  afterAll(async () => {
    await connection?.close();
    await closeClient?.();
    await store?.close();
  });

  /** A worker on `taskQueue` with the real job activities over `backend`; the Brain has no plan. */
  const startWorker = async (taskQueue: string, backend: ClusterBackend): Promise<{ worker: Worker; stopped: Promise<void> }> => {
    const logger = createLogger('test-worker', 'warn');
    const activities = { ...createJobActivities({ store, backends: [backend], config, logger }), optimize: async () => null };
    const worker = await createJobWorker({ connection, namespace: 'default', taskQueue, activities, workflowBundle: workflowBundle() });
    return { worker, stopped: worker.run() };
  };
  const start = (taskQueue: string, s: JobSpec) =>
    client.workflow.start('elasticJob', { args: [{ jobId: s.metadata.name, spec: s }], taskQueue, workflowId: `job-${s.metadata.name}-${taskQueue}` });

  it('fails the round at its join deadline while no worker runs, naming who joined and why the rest are pending', async (ctx) => {
    const taskQueue = taskQueueFor(ctx.task.name);
    const backend = new NeverStartingBackend(UNSCHEDULABLE);
    const s = spec('join-deadline', { nodes: 2, min: 2, joinTimeout: '8s', pendingTimeout: '1h', maxNodeRelaunches: 3 });
    const first = await startWorker(taskQueue, backend);
    const handle = await start(taskQueue, s);

    // While they wait, `rover status` shows why the nodes are pending (from the store, not history).
    const waiting = await waitUntil(async () => {
      const status = await withPendingReasons(config, await handle.query(statusQuery));
      return status.nodes.length === 2 && status.nodes.every((n) => n.pending === UNSCHEDULABLE) ? status : undefined;
    }, 'both nodes pending with the backend reason', 30_000, 100);
    expect(waiting.phase).toBe('RENDEZVOUS');
    expect(formatJobStatus(waiting)).toContain(`pending: ${UNSCHEDULABLE}`);

    // The worker goes away before the deadline; the durable timer still fires on the server.
    first.worker.shutdown();
    await first.stopped;
    const round = (await store.rendezvous.getRound({ jobId: s.metadata.name, round: 1 }))!;
    const deadline = round.openedAt + s.spec.rendezvous.joinTimeout;
    expect(Date.now()).toBeLessThan(deadline);
    await waitUntil(() => Date.now() > deadline + 500, 'the join deadline to pass with no worker', 30_000, 100);
    expect((await store.rendezvous.getRound({ jobId: s.metadata.name, round: 1 }))?.status).toBe('open');

    const second = await startWorker(taskQueue, backend);
    try {
      const result: JobStatus = await jobOutcome(handle);
      expect(result.phase).toBe('FAILED');
      expect(result.reason).toBe(`rendezvous round 1: only 0 of min 2 nodes joined within 8s; 2 nodes still pending: nodes 0, 1 (${UNSCHEDULABLE})`);
      expect(result.nodes.map((n) => n.status)).toEqual(['stopped', 'stopped']);
      const failed = await store.nodeEvents.list(s.metadata.name, { kinds: ['rendezvous_failed'] });
      expect(failed.map((e) => e.source)).toEqual(['worker']);
    } finally {
      second.worker.shutdown();
      await second.stopped;
    }
  });

  it('relaunches a node pending past pendingTimeout, then fails with the reason it is pending once the budget is spent', async (ctx) => {
    const taskQueue = taskQueueFor(ctx.task.name);
    const backend = new NeverStartingBackend(IMAGE_PULL);
    const s = spec('pending-timeout', { nodes: 1, min: 1, joinTimeout: '1h', pendingTimeout: '2s', maxNodeRelaunches: 1 });
    const { worker, stopped } = await startWorker(taskQueue, backend);
    try {
      const result: JobStatus = await jobOutcome(await start(taskQueue, s));
      expect(backend.launched).toEqual(['0#0', '0#1']);
      expect(result.phase).toBe('FAILED');
      expect(result.nodeRelaunches).toBe(1);
      expect(result.warnings).toContain(`node 0 incarnation 0 still pending after 2s (spec.faultTolerance.pendingTimeout): ${IMAGE_PULL}: relaunched as incarnation 1`);
      expect(result.reason).toBe(
        `node 0 incarnation 1 still pending after 2s (spec.faultTolerance.pendingTimeout): ${IMAGE_PULL}; node relaunch budget exhausted (1/1) and 0 nodes left, below spec.nodes.min 1`,
      );
      const rows = await store.nodes.listByJob(s.metadata.name);
      expect(rows.map((n) => [n.incarnation, n.status, n.pendingReason])).toEqual([
        [0, 'stopped', IMAGE_PULL],
        [1, 'stopped', IMAGE_PULL],
      ]);
    } finally {
      worker.shutdown();
      await stopped;
    }
  });
});
