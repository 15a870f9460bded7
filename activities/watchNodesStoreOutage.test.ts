// The job watch across a store outage (a MySQL server restarting): heartbeats the API could not
// record are not silence, so no node is judged lost for them (activities/storeReachability.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ClusterBackend } from '../cluster/types.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { createJobActivities } from './job.ts';

/** What mysql2 rejects with when the server is down: a connection-level error, marked fatal. */
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED', errno: -111, fatal: true });

/** A store whose every call fails as an unreachable MySQL server would while `down` is set. */
function outageProne(store: Store): { store: Store; down: boolean } {
  const state = { down: false, store };
  const failing = (object: object, method: (...args: unknown[]) => unknown) => (...args: unknown[]) =>
    state.down ? Promise.reject(refused()) : method.apply(object, args);
  state.store = new Proxy(store, {
    get(object, key) {
      const value: unknown = Reflect.get(object, key, object);
      if (typeof value === 'function') return failing(object, value as (...args: unknown[]) => unknown);
      if (key === 'db' || typeof value !== 'object' || value === null) return value;
      return new Proxy(value, {
        get(repo, name) {
          const method: unknown = Reflect.get(repo, name, repo);
          return typeof method === 'function' ? failing(repo, method as (...args: unknown[]) => unknown) : method;
        },
      });
    },
  });
  return state;
}

describe('watchNodes across a store outage', () => {
  const JOB = 'outage';
  const TIMEOUT_MS = 30_000;
  const node = { jobId: JOB, nodeId: 0, incarnation: 0 };
  let home: string;
  let store: Store;

  beforeEach(async () => {
    home = mkdtempSync(path.join(os.tmpdir(), 'rover-store-outage-'));
    store = await openStore(`sqlite:${path.join(home, 'rover.db')}`);
  });
  afterEach(async () => {
    await store.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('judges no node lost for silence the store could not record, and does once it answered for a whole heartbeatTimeout', async () => {
    const parsed = parseJobSpec({
      metadata: { name: JOB, user: 'tester' },
      spec: {
        nodes: { min: 1, max: 1, initial: 1 },
        nprocPerNode: 1,
        entrypoint: { command: 'python3', args: ['train.py'], workdir: home },
        faultTolerance: { heartbeatInterval: '1s', heartbeatTimeout: `${TIMEOUT_MS}ms` },
      },
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const t0 = 1_000_000;
    let clock = t0;
    await store.jobs.create({ id: JOB, workflowId: `job-${JOB}`, user: 'tester', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: 'tok' });
    await store.nodes.upsertLaunch({ ...node, backend: 'local', status: 'launching' });
    await store.nodes.update(node, { status: 'running', startedAt: t0, lastHeartbeatAt: t0 });

    const backend: ClusterBackend = { name: 'local', ensureNode: async () => ({ pid: null, logPath: null, host: null, created: false }), deleteNode: async () => {}, findDeadNodes: async () => [] };
    // Each watch looks once and returns (the test's clock stands still while it runs).
    const loaded = loadConfig({ ROVER_HOME: home });
    const config = { ...loaded, timing: { ...loaded.timing, watchMaxWaitMs: 0 } };
    const flaky = outageProne(store);
    const activities = createJobActivities({ store: flaky.store, backends: [backend], config, logger: createLogger('test', 'silent'), clock: () => clock });
    const watch = () => new MockActivityEnvironment().run(activities.watchNodes, { jobId: JOB, cursor: 0 });
    const lost = async () => (await store.nodeEvents.list(JOB, { kinds: ['node_lost'] })).length;

    // The worker has been up a whole heartbeatTimeout when the store goes down for 40 s; the
    // node's heartbeats cannot be recorded meanwhile.
    clock = t0 + TIMEOUT_MS + 1_000;
    await store.nodes.update(node, { lastHeartbeatAt: clock });
    await watch();
    flaky.down = true;
    for (; clock < t0 + TIMEOUT_MS + 41_000; clock += 5_000) await expect(watch()).rejects.toThrow(/ECONNREFUSED/);
    flaky.down = false;
    // Back: the last heartbeat is 40 s old, yet the node was only unheard while nobody could hear it.
    const lastFailure = clock - 5_000;
    await watch();
    clock = lastFailure + TIMEOUT_MS - 1;
    await watch();
    expect(await lost()).toBe(0);
    // Still silent a whole heartbeatTimeout after the store last failed: lost.
    clock = lastFailure + TIMEOUT_MS;
    await watch();
    expect(await lost()).toBe(1);
  });
});
