// The hot path never writes workflow history: a running job of 200 simulated agents heartbeating
// at 1 Hz for 60 s adds no event to its workflow's history. Today's workflow and job activities,
// the real API and store, the suite's Temporal server; the backend records launches and starts
// nothing, and the test plays each node's agent over HTTP with the token the worker gave it. The
// Brain answers every plan request with "keep the spec" (a Brain that does not answer would be
// asked again every 30 s, which is the job's timer, not the hot path).
// watchNodes may wait longer than the window (ROVER_WATCH_MAX_WAIT_MS), so only what the hot
// path caused could add events.
import { setMaxListeners } from 'node:events';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobActivities } from '../activities/index.ts';
import { HttpApiClient, withRetry } from '../agent/apiClient.ts';
import { buildApi } from '../api/server.ts';
import type { ClusterBackend, DeadNode, LaunchResult, NodeLaunch } from '../cluster/types.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { createJobWorker } from '../workers/jobWorker.ts';
import { statusQuery } from '../workflows/job/messages.ts';
import { taskQueueFor, temporalClient, waitUntil, workerConnection, workflowBundle } from './helpers.ts';

const AGENTS = 200;
const WINDOW_MS = 60_000;

/** Launches only record the node and its agent's token; the test is every node's agent. */
class SimulatedBackend implements ClusterBackend {
  readonly name = 'local' as const;
  readonly tokens = new Map<number, string>();
  private readonly launched = new Set<string>();
  async ensureNode(launch: NodeLaunch): Promise<LaunchResult> {
    this.tokens.set(launch.nodeId, launch.agentEnv.ROVER_TOKEN!);
    const incarnation = `${launch.nodeId}#${launch.incarnation}`;
    if (this.launched.has(incarnation)) return { pid: null, logPath: null, host: null, created: false };
    this.launched.add(incarnation);
    return { pid: null, logPath: null, host: null, created: true, launched: {} };
  }
  async deleteNode(): Promise<void> {}
  async findDeadNodes(): Promise<DeadNode[]> {
    return [];
  }
}

describe('heartbeats and workflow history', () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'rover-history-'));
  const config = loadConfig({
    ROVER_OPERATOR_TOKEN: 'signing-key-of-the-history-test',
    ROVER_HOME: home,
    ROVER_STORE_URL: `sqlite:${path.join(home, 'rover.db')}`,
    ROVER_WATCH_POLL_MS: '200',
    ROVER_WATCH_MAX_WAIT_MS: String(5 * WINDOW_MS),
    ROVER_LOG_LEVEL: 'warn',
  });
  let store: Store;
  let cleanup: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    store = await openStore(config.storeUrl);
    cleanup.push(() => store.close());
  });
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn();
    cleanup = [];
  });

  it(`a job of ${AGENTS} agents heartbeating for 60 s adds no history event`, async (ctx) => {
    const api = await buildApi({ config, store, logger: createLogger('test-api', 'warn') });
    const apiUrl = await api.listen({ host: '127.0.0.1', port: 0 });
    cleanup.push(() => api.close());
    const { client, close: closeClient } = await temporalClient();
    cleanup.push(closeClient);
    const connection = await workerConnection();
    cleanup.push(() => connection.close());
    const backend = new SimulatedBackend();
    const taskQueue = taskQueueFor(ctx.task.name);
    const activities = { ...createJobActivities({ store, backends: [backend], config, logger: createLogger('test-worker', 'warn') }), optimize: async (input: { stage: string }) => ({ stage: input.stage, rule: 'keep', reason: 'the test keeps the spec' }) };
    const worker = await createJobWorker({ connection, namespace: 'default', taskQueue, activities, workflowBundle: workflowBundle() });
    const running = worker.run();
    cleanup.push(async () => {
      worker.shutdown();
      await running;
    });

    const parsed = parseJobSpec({
      metadata: { name: 'beats', user: 'tester' },
      spec: {
        nodes: { min: AGENTS },
        entrypoint: { command: 'python3', args: ['train.py'], workdir: home },
        faultTolerance: { heartbeatInterval: '1s', heartbeatTimeout: '5m', hangTimeout: '1h', startupTimeout: '1h' },
        rendezvous: { lastCallTimeout: '1s', joinTimeout: '5m' },
        diagnosis: { nodeCheck: 'off' },
      },
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const handle = await client.workflow.start('elasticJob', { args: [{ jobId: 'beats', spec: parsed.spec }], taskQueue, workflowId: `job-beats-${taskQueue}` });
    cleanup.push(() => handle.terminate('test over').then(() => undefined, () => undefined));
    await waitUntil(() => backend.tokens.size === AGENTS, 'every node launched', 120_000, 200);

    const abort = new AbortController();
    // Every simulated agent waits on this one signal while it backs off between retries.
    setMaxListeners(AGENTS + 10, abort.signal);
    /** Nodes whose heartbeat was answered while `counting`. */
    const beating = new Set<number>();
    let counting = false;
    /** Why an agent gave up (a refusal: retries end only on a 4xx), by node. */
    const gaveUp = new Map<number, string>();
    const agent = async (node: number) => {
      const client = new HttpApiClient({ baseUrls: [apiUrl], job: 'beats', token: backend.tokens.get(node)!, requestTimeoutMs: 30_000 });
      const ref = { node, incarnation: 0 };
      // As a real agent: every call retried while the API is slow or unreachable (a loaded machine).
      const call = <T>(fn: () => Promise<T>) => withRetry(fn, { signal: abort.signal });
      await call(() => client.register({ ...ref, pid: 10_000 + node, host: '127.0.0.1' }));
      const { round } = await call(() => client.join({ ...ref, host: '127.0.0.1', freePort: 20_000 + node }));
      await waitUntil(async () => (await call(() => client.roundStatus(round, ref))).status === 'closed', `node ${node} to get its rank`, 300_000, 500);
      for (let step = 1; !abort.signal.aborted; step++) {
        await call(() => client.heartbeat({ ...ref, round, step, processes: [] }));
        if (counting) beating.add(node);
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    // Handled from the start: an agent that fails is named by the window's check, never an unhandled rejection.
    const agents = Array.from({ length: AGENTS }, (_, node) => agent(node).catch((err: unknown) => void (abort.signal.aborted || gaveUp.set(node, String(err)))));
    try {
      await waitUntil(async () => (await handle.query(statusQuery)).phase === 'RUNNING', 'the job to run', 180_000, 500);
      // Let the round's events reach the workflow, then count.
      await waitUntil(async () => (await store.nodeEvents.list('beats', { kinds: ['round_closed'] })).length === 1, 'round 1 to close', 60_000, 200);
      const settled = async () => {
        const before = (await handle.describe()).historyLength;
        await new Promise((r) => setTimeout(r, 3000));
        return (await handle.describe()).historyLength === before;
      };
      await waitUntil(settled, 'the history to settle', 60_000, 0);
      const before = (await handle.describe()).historyLength;
      counting = true;
      await new Promise((r) => setTimeout(r, WINDOW_MS));
      const after = (await handle.describe()).historyLength;
      expect(beating.size, `every agent heartbeated in the window; gave up: ${JSON.stringify([...gaveUp].slice(0, 5))}`).toBe(AGENTS);
      // On failure, name what was added: an event type per entry, and the activity or timer.
      const added = after === before ? [] : ((await handle.fetchHistory()).events ?? []).slice(before).map((e) => [e.eventType, e.activityTaskScheduledEventAttributes?.activityType?.name ?? '']);
      expect(after - before, JSON.stringify(added)).toBe(0);
    } finally {
      abort.abort();
      await Promise.allSettled(agents);
    }
  }, 600_000);
});
