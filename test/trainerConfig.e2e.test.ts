// Trainer-side configuration, end to end: a Brain YAML directory synced by brainConfigSync, a
// job whose trainer (examples/config_trainer.py) reads its learning rate from the job's merged
// configuration with the job token, and follows an operator's edit within one sync.
import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { YamlDirSource } from '../brain/sources/yamlDir.ts';
import { submitJob } from '../cli/jobs.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { brainSyncStatusQuery, brainSyncWorkflowId } from '../workflows/brain/messages.ts';
import { stopSignal } from '../workflows/job/messages.ts';
import { createBrainWorker, ensureSyncWorkflows } from '../workers/brainWorker.ts';
import { jobOutcome, taskQueueFor, waitUntil, workerConnection, workflowBundle } from './helpers.ts';
import { repoRoot } from './jobFixtures.ts';
import { startTestStack, type TestStack } from './stack.ts';

describe('a trainer reading and following its configuration', () => {
  let stack: TestStack;
  let worker: Worker;
  let running: Promise<void>;
  let closeConnection: () => Promise<void>;
  let dir: string;
  const source = `trainer-cfg-${randomUUID().slice(0, 8)}`;
  const lrConfig = (lr: number) => `name: lr\ninclude: {name: cfg-job}\nconfigure: {trainer: {learningRate: ${lr}}}\n`;
  const syncStatus = () => stack.client.workflow.getHandle(brainSyncWorkflowId(source)).query(brainSyncStatusQuery);

  beforeAll(async () => {
    stack = await startTestStack('trainer config');
    dir = mkdtempSync(path.join(stack.home, 'brain-'));
    writeFileSync(path.join(dir, 'lr.yaml'), lrConfig(0.05));
    const connection = await workerConnection();
    closeConnection = () => connection.close();
    const taskQueue = taskQueueFor('trainer config brain');
    worker = await createBrainWorker({
      connection, namespace: 'default', taskQueue, store: stack.store, logger: createLogger('test', 'silent'), sources: [new YamlDirSource(source, dir)], workflowBundle: workflowBundle(),
    });
    running = worker.run();
    await ensureSyncWorkflows(stack.client, { sources: [{ name: source }], taskQueue, intervalMs: 1000 });
    await Promise.all([stack.startWorker(), stack.startApi()]);
    await waitUntil(async () => (await syncStatus()).version === 1, 'the first snapshot', 60_000);
  }, 180_000);
  afterAll(async () => {
    await stack?.client.workflow.getHandle(brainSyncWorkflowId(source)).terminate('test over').catch(() => undefined);
    worker?.shutdown();
    await running;
    await closeConnection?.();
    await stack?.close();
  });

  it('starts with the configured learning rate and takes an edit within one sync', async () => {
    const lrLog = path.join(stack.home, 'lr.log');
    const parsed = parseJobSpec({
      metadata: { name: 'cfg-job', user: 'ada' },
      spec: {
        nodes: { min: 1, max: 1 },
        entrypoint: { command: 'python3', args: ['examples/config_trainer.py', '--steps', '100000', '--lr-log', lrLog], workdir: repoRoot },
        resources: { memory: '256Mi' },
        faultTolerance: { heartbeatInterval: '200ms' },
        rendezvous: { lastCallTimeout: '1s' },
      },
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const handle = await submitJob(stack.client, parsed.spec, { taskQueue: stack.config.temporal.taskQueue });
    const lines = () => (existsSync(lrLog) ? readFileSync(lrLog, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' ')) : []);
    const [first] = await waitUntil(() => (lines().length > 0 ? lines() : undefined), 'the trainer to read its configuration', 120_000, 200);
    expect(first![1]).toBe('0.05');
    // The agent passed the version it saw at start, the one the trainer read.
    const logFile = await waitUntil(async () => {
      const launched = await stack.store.nodeEvents.list('cfg-job', { kinds: ['node_launched'] });
      return (launched[0]?.data as { logPath?: string } | undefined)?.logPath;
    }, 'the node log', 30_000);
    expect(readFileSync(logFile, 'utf8')).toContain(`started with configuration version ${first![0]} (ROVER_CONFIG_VERSION)`);

    const before = await syncStatus();
    writeFileSync(path.join(dir, 'lr.yaml'), lrConfig(0.01));
    const changed = await waitUntil(() => lines().find((l) => l[1] === '0.01'), 'the edited learning rate to reach the trainer', 60_000, 100);
    const after = await syncStatus();
    expect(changed[0]).not.toBe(first![0]);
    expect(after.version).toBe((before.version ?? 0) + 1);
    // Counted in syncs, not time: the read that published the edit is at most the second after it
    // (the one in flight at the edit may have read the old file), and the trainer had it by then.
    expect(after.syncs - before.syncs).toBeLessThanOrEqual(2);

    await handle.signal(stopSignal, { reason: 'test over' });
    expect((await jobOutcome(handle)).phase).toBe('STOPPED');
  }, 300_000);
});
