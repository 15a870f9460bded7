// Brain configuration sync on the real Temporal dev server: a YAML directory edited on disk is
// served by the Brain API within 2 sync intervals; a broken file is left out alone, listed in the
// workflow's status (and `rover brain status`) with its path and field, the valid ones served;
// the workflow continues-as-new carrying its state.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBrainApi } from '../api/brainServer.ts';
import { YamlDirSource } from '../brain/sources/yamlDir.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { openStore, type Store } from '../store/index.ts';
import { brainSyncStatusQuery, brainSyncWorkflowId, type BrainSyncStatus } from '../workflows/brain/messages.ts';
import { brainSyncStatuses, formatBrainStatus, type SourceStatus } from '../cli/brain.ts';
import { createBrainWorker, ensureSyncWorkflows } from '../workers/brainWorker.ts';
import { taskQueueFor, temporalClient, waitUntil, workerConnection, workflowBundle } from './helpers.ts';

const INTERVAL_MS = 1000;

describe('brainConfigSync with a YAML directory', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rover-brain-'));
  const source = `yaml-${randomUUID().slice(0, 8)}`;
  const logger = createLogger('test', 'silent');
  let store: Store;
  let worker: Worker;
  let running: Promise<void>;
  let api: Awaited<ReturnType<typeof buildBrainApi>>;
  let temporal: Awaited<ReturnType<typeof temporalClient>>;
  let closeConnection: () => Promise<void>;
  const taskQueue = taskQueueFor('brain config sync');

  const writeConfig = (file: string, text: string) => writeFileSync(path.join(dir, file), text);
  // Matching by characteristics is the operator's (api/brainRoutes.ts).
  const operator = 'operator-secret-for-brain-e2e';
  const served = async () =>
    (await api.inject({ url: '/brain/v1/config?name=resnet&user=ada&label=team=cv', headers: { authorization: `Bearer ${operator}` } })).json() as {
      configure: Record<string, unknown>;
    };
  const status = () => temporal.client.workflow.getHandle(brainSyncWorkflowId(source)).query(brainSyncStatusQuery);

  beforeAll(async () => {
    writeConfig('team.yaml', 'name: cv\ninclude: {labels: {team: cv}}\nconfigure: {queue: v1}\n');
    store = await openStore(`sqlite:${path.join(dir, 'brain.db')}`);
    api = await buildBrainApi({ config: loadConfig({ ROVER_OPERATOR_TOKEN: operator }), store, logger });
    const connection = await workerConnection();
    closeConnection = () => connection.close();
    worker = await createBrainWorker({
      connection, namespace: 'default', taskQueue, store, logger, sources: [new YamlDirSource(source, dir)], workflowBundle: workflowBundle(),
    });
    running = worker.run();
    temporal = await temporalClient();
    await ensureSyncWorkflows(temporal.client, { sources: [{ name: source }], taskQueue, intervalMs: INTERVAL_MS, continueAsNewAfterSyncs: 4 });
  }, 120_000);

  afterAll(async () => {
    for (const id of [source, `${source}-extra`]) await temporal?.client.workflow.getHandle(brainSyncWorkflowId(id)).terminate('test over').catch(() => undefined);
    worker?.shutdown();
    await running;
    await closeConnection?.();
    await temporal?.close();
    await api?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the directory, then an edit within 2 sync intervals', async () => {
    await waitUntil(async () => (await served()).configure.queue === 'v1', 'the first snapshot to be served', 60_000);
    const before = await status();
    writeConfig('team.yaml', 'name: cv\ninclude: {labels: {team: cv}}\nconfigure: {queue: v2}\n');
    await waitUntil(async () => (await served()).configure.queue === 'v2', 'the edit to be served', 60_000);
    const after = await status();
    // Counted in syncs, not wall-clock: the read that published v2 is at most the second one after the edit.
    expect(after.syncs - before.syncs).toBeLessThanOrEqual(2);
    expect(after.version).toBe((before.version ?? 0) + 1);
    expect(after.lastError).toBeNull();
  });

  it('rejects a broken file alone, serves a valid edit beside it, and lists the rejected entries until fixed', async () => {
    const good = await status();
    writeConfig('broken.yaml', 'name: broken\ninclude: {usr: ada}\nconfigure: {queue: bad}\n');
    const broken = await waitUntil(async () => {
      const s = await status();
      return s.rejected.length > 0 ? s : undefined;
    }, 'the broken edit to be reported', 60_000);
    expect(broken.rejected).toEqual([`${path.join(dir, 'broken.yaml')}: include.usr: unknown field (known: user, group, cluster, name, labels)`]);
    expect(broken.lastError).toBeNull();
    expect(broken.version).toBe(good.version);
    expect((await served()).configure.queue).toBe('v2');
    // An out-of-range optimizer setting is rejected with its entry; the valid edit beside them is served.
    writeConfig('tuned.yaml', 'name: tuned\nconfigure: {optimizer: {efficiencyThreshold: 2, oomFactor: 3}}\n');
    writeConfig('team.yaml', 'name: cv\ninclude: {labels: {team: cv}}\nconfigure: {queue: v2b}\n');
    await waitUntil(async () => (await served()).configure.queue === 'v2b', 'the valid edit beside the broken file to be served', 60_000);
    const both = await waitUntil(async () => {
      const s = await status();
      return s.rejected.length === 2 ? s : undefined;
    }, 'the bad setting to be reported', 60_000);
    expect(both.rejected).toEqual([
      `${path.join(dir, 'broken.yaml')}: include.usr: unknown field (known: user, group, cluster, name, labels)`,
      `${path.join(dir, 'tuned.yaml')}: configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2)`,
    ]);
    expect((await served()).configure.optimizer).toBeUndefined();
    // rover brain status shows them under their source, and fails.
    const text = formatBrainStatus(await brainSyncStatuses(temporal.client, [source]));
    expect(text).toContain(`${source}:\n  ${path.join(dir, 'broken.yaml')}: include.usr: unknown field`);
    expect(text).toContain(`  ${path.join(dir, 'tuned.yaml')}: configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2)`);
    rmSync(path.join(dir, 'tuned.yaml'));
    // A duplicate name is rejected naming both files.
    writeConfig('zz-copy.yaml', 'name: cv\nconfigure: {queue: copy}\n');
    const duplicate = `${path.join(dir, 'zz-copy.yaml')}: configuration name "cv" is already used in ${path.join(dir, 'team.yaml')}`;
    await waitUntil(async () => (await status()).rejected.some((r) => r.startsWith(duplicate)), 'the duplicate to be reported', 60_000);
    expect((await served()).configure.queue).toBe('v2b');
    rmSync(path.join(dir, 'zz-copy.yaml'));
    writeConfig('broken.yaml', 'name: fixed\ninclude: {user: ada}\npriority: 1\nconfigure: {queue: v3}\n');
    const fixed = await waitUntil(async () => {
      const s = await status();
      return s.rejected.length === 0 && s.version !== good.version ? s : undefined;
    }, 'the fixed edit to be published', 60_000);
    expect(fixed.failures).toBeGreaterThanOrEqual(1);
    expect(fixed.lastError).toBeNull();
    expect((await served()).configure.queue).toBe('v3');
  });

  it('continues-as-new carrying its state', async () => {
    const s: BrainSyncStatus = await waitUntil(async () => {
      const st = await status();
      return st.runs >= 2 ? st : undefined;
    }, 'a continue-as-new', 60_000);
    expect(s.syncs).toBeGreaterThanOrEqual(4);
    expect(s.failures).toBeGreaterThanOrEqual(1);
    expect(s.version).toBeGreaterThanOrEqual(3);
  });

  it('ends the sync workflow of a removed source; rover brain status lists starting, running and orphaned ones', async () => {
    const extra = `${source}-extra`;
    const unstarted = `${source}-unstarted`;
    await ensureSyncWorkflows(temporal.client, { sources: [{ name: source }, { name: extra }], taskQueue, intervalMs: INTERVAL_MS });
    const row = (rows: SourceStatus[], name: string) => rows.find((r) => r.source === name);
    const listed = await waitUntil(async () => {
      const rows = await brainSyncStatuses(temporal.client, [source, extra, unstarted]);
      return row(rows, extra)?.state === 'running' ? rows : undefined;
    }, 'both sync workflows to answer', 60_000, 250);
    expect(row(listed, source)).toMatchObject({ state: 'running', status: { source } });
    expect(row(listed, unstarted)).toMatchObject({ state: 'starting' });
    // The extra source leaves the configuration: until the worker starts again its workflow is an orphan…
    expect(row(await brainSyncStatuses(temporal.client, [source]), extra)).toMatchObject({ state: 'orphaned' });
    // …and the worker's start ends it, leaving the configured one running.
    await ensureSyncWorkflows(temporal.client, { sources: [{ name: source }], taskQueue, intervalMs: INTERVAL_MS });
    const ended = await temporal.client.workflow.getHandle(brainSyncWorkflowId(extra)).describe();
    expect(ended.status.name).toBe('TERMINATED');
    expect((await temporal.client.workflow.getHandle(brainSyncWorkflowId(source)).describe()).status.name).toBe('RUNNING');
    await waitUntil(async () => row(await brainSyncStatuses(temporal.client, [source]), extra) === undefined, 'the orphan to leave the list', 30_000, 250);
  });

  it('takes a new interval when the worker starts again with another one', async () => {
    await ensureSyncWorkflows(temporal.client, { sources: [{ name: source }], taskQueue: 'unused-already-running', intervalMs: 700 });
    await waitUntil(async () => (await status()).intervalMs === 700, 'the new interval', 30_000);
  });
});
