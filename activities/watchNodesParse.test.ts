// watchNodes parses the event rows once, where it reads them: the workflow gets typed events, and
// a row no schema describes (written outside the typed append: another version, a hand edit)
// comes back as rejected, with what is wrong, instead of reaching JobState or failing the call.
// A worker shutting down does not wait out a watch: the watch returns at once.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ClusterBackend } from '../cluster/types.ts';
import { loadConfig } from '../common/config.ts';
import type { WatchResult } from '../common/jobActivities.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { openStore, type Store } from '../store/index.ts';
import { createJobActivities } from './job.ts';

describe('watchNodes', () => {
  const JOB = 'parsed';
  let home: string;
  let store: Store;

  beforeEach(async () => {
    home = mkdtempSync(path.join(os.tmpdir(), 'rover-watch-parse-'));
    store = await openStore(`sqlite:${path.join(home, 'rover.db')}`);
  });
  afterEach(async () => {
    await store.close();
    rmSync(home, { recursive: true, force: true });
  });

  const createJob = async () => {
    const parsed = parseJobSpec({
      metadata: { name: JOB, user: 'tester' },
      spec: { nodes: { min: 1, max: 1, initial: 1 }, nprocPerNode: 1, entrypoint: { command: 'python3', args: ['train.py'], workdir: home } },
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    await store.jobs.create({ id: JOB, workflowId: `job-${JOB}`, user: 'tester', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: 'tok' });
  };
  const backend: ClusterBackend = { name: 'local', ensureNode: async () => ({ pid: null, logPath: null, host: null, created: false }), deleteNode: async () => {}, findDeadNodes: async () => [] };
  const activitiesWith = (watchMaxWaitMs: number, draining?: AbortSignal) => {
    const loaded = loadConfig({ ROVER_HOME: home });
    const config = { ...loaded, timing: { ...loaded.timing, watchMaxWaitMs, watchPollMs: 50 } };
    return createJobActivities({ store, backends: [backend], config, logger: createLogger('test', 'silent'), ...(draining && { draining }) });
  };

  it('returns typed events and reports a malformed row with its problem, skipping it', async () => {
    await createJob();
    const opened = await store.nodeEvents.append({ jobId: JOB, kind: 'round_opened', data: { round: 1, cause: 'job start' } });
    // Past the typed append, as a row of another writer would be.
    const bad = { jobId: JOB, nodeId: 0, incarnation: 0, kind: 'node_failed', data: JSON.stringify({ exitCode: 'one', round: 1 }), createdAt: 1, source: 'agent', rank: null };
    const badId = Number((await store.db.insertInto('nodeEvents').values(bad).executeTakeFirstOrThrow()).insertId);
    const closed = await store.nodeEvents.append({ jobId: JOB, kind: 'round_closed', data: { round: 1, members: [{ node: 0, incarnation: 0, groupRank: 0 }], excluded: [], masterAddr: '127.0.0.1', masterPort: 29500 } });

    const activities = activitiesWith(0);
    const result = (await new MockActivityEnvironment().run(activities.watchNodes, { jobId: JOB, cursor: 0 })) as WatchResult;

    expect(result.events.map((e) => [e.id, e.kind])).toEqual([[opened.id, 'round_opened'], [closed.id, 'round_closed']]);
    expect(result.rejected).toEqual([{ id: badId, kind: 'node_failed', nodeId: 0, incarnation: 0, problem: expect.stringMatching(/^data\.exitCode: /) }]);
  });

  it('returns what it has, nothing here, as soon as its worker starts draining instead of waiting out its max wait', async () => {
    await createJob();
    const draining = new AbortController();
    const activities = activitiesWith(3_600_000, draining.signal);
    const watch = new MockActivityEnvironment().run(activities.watchNodes, { jobId: JOB, cursor: 0 }) as Promise<WatchResult>;
    // Waiting (a poll or two in), then the worker is told to shut down.
    setTimeout(() => draining.abort(), 200);
    expect((await watch).events).toEqual([]);
  });
});
