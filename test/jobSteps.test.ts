// A job step whose activity fails for a while and then heals: today's workflow and job activities,
// a real store, the suite's Temporal server, and a backend whose launches fail until told not to.
// The status says the launch is retried and why while it fails, and when it succeeded again.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobActivities } from '../activities/index.ts';
import type { ClusterBackend, DeadNode, LaunchResult } from '../cluster/types.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { createJobWorker } from '../workers/jobWorker.ts';
import { statusQuery, stopSignal, type JobStatus } from '../workflows/job/messages.ts';
import { jobOutcome, taskQueueFor, temporalClient, waitUntil, workerConnection, workflowBundle } from './helpers.ts';

/** Launches fail with a connection error until `heal()`; nodes then are created and never start. */
class FlakyBackend implements ClusterBackend {
  readonly name = 'local' as const;
  tries = 0;
  private healed = false;
  heal(): void {
    this.healed = true;
  }
  async ensureNode(): Promise<LaunchResult> {
    this.tries += 1;
    if (!this.healed) throw new Error('connect ECONNREFUSED 127.0.0.1:6443');
    return { pid: null, logPath: null, host: null, created: true, launched: {} };
  }
  async deleteNode(): Promise<void> {}
  async findDeadNodes(): Promise<DeadNode[]> {
    return [];
  }
}

function spec(name: string): JobSpec {
  const parsed = parseJobSpec({
    metadata: { name, user: 'tester' },
    spec: {
      nodes: { min: 1, max: 1, initial: 1 },
      nprocPerNode: 1,
      entrypoint: { command: 'python3', args: ['train.py'], workdir: os.tmpdir() },
      rendezvous: { lastCallTimeout: '1s', joinTimeout: '30m' },
    },
  });
  if (!parsed.ok) throw new Error(`bad test spec: ${JSON.stringify(parsed.errors)}`);
  return parsed.spec;
}

describe('a job step that fails and heals', () => {
  let store: Store;
  let client: Client;
  let closeClient: () => Promise<void>;
  let connection: NativeConnection;
  const home = mkdtempSync(path.join(os.tmpdir(), 'rover-steps-'));
  const config = loadConfig({ ROVER_OPERATOR_TOKEN: 'signing-key-of-the-step-tests', ROVER_HOME: home, ROVER_STORE_URL: `sqlite:${path.join(home, 'rover.db')}`, ROVER_WATCH_POLL_MS: '100', ROVER_WATCH_MAX_WAIT_MS: '1000', ROVER_LOG_LEVEL: 'warn' });

  beforeAll(async () => {
    store = await openStore(config.storeUrl);
    ({ client, close: closeClient } = await temporalClient());
    connection = await workerConnection();
  });
  afterAll(async () => {
    await connection?.close();
    await closeClient?.();
    await store?.close();
  });

  it('shows the launch retried and why while it fails, then that it succeeded, and launches once healed', async (ctx) => {
    const taskQueue = taskQueueFor(ctx.task.name);
    const backend = new FlakyBackend();
    const activities = { ...createJobActivities({ store, backends: [backend], config, logger: createLogger('test-worker', 'silent') }), optimize: async () => null };
    const worker = await createJobWorker({ connection, namespace: 'default', taskQueue, activities, workflowBundle: workflowBundle() });
    const running = worker.run();
    try {
      const s = spec('flaky-launch');
      const handle = await client.workflow.start('elasticJob', { args: [{ jobId: s.metadata.name, spec: s }], taskQueue, workflowId: `job-flaky-launch-${taskQueue}` });
      const failing = await waitUntil(async () => {
        const status: JobStatus = await handle.query(statusQuery);
        return status.warnings.includes('launchNodes is failing and will be retried in 10 s: connect ECONNREFUSED 127.0.0.1:6443') ? status : undefined;
      }, 'the status to say the launch fails and is retried', 60_000, 100);
      expect(failing.phase).toBe('LAUNCHING');
      // One call's tries, then the workflow's pause: the activity is not hammered.
      expect(backend.tries).toBe(4);

      backend.heal();
      const healed = await waitUntil(async () => {
        const status: JobStatus = await handle.query(statusQuery);
        return status.phase === 'RENDEZVOUS' ? status : undefined;
      }, 'the job to launch once the backend heals', 60_000, 100);
      expect(healed.warnings.slice(-2)).toEqual([
        'launchNodes is failing and will be retried in 10 s: connect ECONNREFUSED 127.0.0.1:6443',
        'launchNodes succeeded after 1 failed call',
      ]);
      expect(await store.nodes.listByJob('flaky-launch')).toHaveLength(1);

      await handle.signal(stopSignal, { reason: 'test over' });
      expect(await jobOutcome(handle)).toMatchObject({ phase: 'STOPPED', reason: 'test over' });
    } finally {
      worker.shutdown();
      await running;
    }
  });
});
