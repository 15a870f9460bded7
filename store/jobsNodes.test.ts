import { expect, it } from 'vitest';
import { tokenDigest } from '../common/tokens.ts';
import type { BeatWrite, NewJob, NodeKey } from './index.ts';
import { describeEachStore, testJobSpec } from './testing.ts';

function job(id: string, over: Partial<NewJob> = {}): NewJob {
  return {
    id,
    workflowId: `job-${id}`,
    user: 'ada',
    group: 'ml',
    backend: 'local',
    spec: testJobSpec(2),
    phase: 'Pending',
    token: `token-${id}`,
    ...over,
  };
}

describeEachStore('jobs', (h) => {
  it('round-trips a job with its spec parsed back', async () => {
    let now = 1000;
    const store = await h.open({ now: () => now });
    const { job: created, created: isNew } = await store.jobs.create(job('a'));
    expect(isNew).toBe(true);
    const { token, ...fields } = job('a');
    // The row holds the token's digest, never the token.
    expect(created).toEqual({
      ...fields,
      tokenDigest: tokenDigest(token),
      createdAt: 1000,
      updatedAt: 1000,
      endedAt: null,
      reason: null,
      hangCheckedAt: null,
      hangEventId: null,
      stragglerCheckedAt: null,
    });
    expect(await store.jobs.get('a')).toEqual(created);
    expect(await store.jobs.get('missing')).toBeUndefined();
    now = 2000;
    expect(await store.jobs.update('a', { phase: 'Failed', reason: 'node 1 OOM', endedAt: 1900 })).toBe(true);
    expect(await store.jobs.get('a')).toMatchObject({ phase: 'Failed', reason: 'node 1 OOM', endedAt: 1900, updatedAt: 2000 });
    expect(await store.jobs.update('missing', { phase: 'Failed' })).toBe(false);
  });

  it('lets one caller per interval claim the hang check, and keeps the hang it found', async () => {
    const store = await h.open();
    await store.jobs.create(job('a'));
    // Concurrent claims (heartbeats on several API replicas): exactly one wins.
    const claims = await Promise.all(Array.from({ length: 8 }, () => store.jobs.claimHangCheck('a', 10_000, 5000)));
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await store.jobs.claimHangCheck('a', 14_999, 5000)).toBe(false);
    expect(await store.jobs.claimHangCheck('a', 15_000, 5000)).toBe(true);
    expect(await store.jobs.claimHangCheck('missing', 15_000, 5000)).toBe(false);
    await store.jobs.setHangEvent('a', 42);
    const row = await store.jobs.get('a');
    expect(row).toMatchObject({ hangCheckedAt: 15_000, hangEventId: 42 });
    // Bookkeeping, not a change of the job.
    expect(row?.updatedAt).toBe(row?.createdAt);
    // A new run under the same name starts with no hang state.
    await store.jobs.replace(job('a'));
    expect(await store.jobs.get('a')).toMatchObject({ hangCheckedAt: null, hangEventId: null });
  });

  it('creates nothing new when the same job is created again', async () => {
    const store = await h.open();
    await store.jobs.create(job('a'));
    const again = await store.jobs.create(job('a', { user: 'bob', token: 'other' }));
    expect(again.created).toBe(false);
    expect(again.job).toMatchObject({ user: 'ada', tokenDigest: tokenDigest('token-a') });
  });

  it('lists newest first, filtered by phase and user', async () => {
    let now = 0;
    const store = await h.open({ now: () => (now += 10) });
    await store.jobs.create(job('old', { phase: 'Succeeded' }));
    await store.jobs.create(job('mid', { user: 'bob' }));
    await store.jobs.create(job('new'));
    expect((await store.jobs.list()).map((j) => j.id)).toEqual(['new', 'mid', 'old']);
    expect((await store.jobs.list({ phases: ['Pending'] })).map((j) => j.id)).toEqual(['new', 'mid']);
    expect((await store.jobs.list({ user: 'bob' })).map((j) => j.id)).toEqual(['mid']);
    expect((await store.jobs.list({ limit: 1 })).map((j) => j.id)).toEqual(['new']);
    expect(await store.jobs.list({ phases: [] })).toEqual([]);
  });
});

describeEachStore('nodes', (h) => {
  const key: NodeKey = { jobId: 'j', nodeId: 1, incarnation: 0 };

  it('writes a batch of heartbeats in one go: each beat its fields, null ones kept, no other node or job touched', async () => {
    const store = await h.open({ now: () => 500 });
    const N = 300; // more than one statement's worth
    await store.transaction(async (tx) => {
      for (let nodeId = 0; nodeId < N; nodeId++) await tx.nodes.upsertLaunch({ jobId: 'j', nodeId, incarnation: 0, backend: 'local', status: 'running' });
      await tx.nodes.upsertLaunch({ jobId: 'j', nodeId: 7, incarnation: 1, backend: 'local', status: 'running' });
      await tx.nodes.upsertLaunch({ jobId: 'other', nodeId: 7, incarnation: 0, backend: 'local', status: 'running' });
    });
    await store.nodes.recordBeats('j', 400, [{ nodeId: 3, incarnation: 0, step: 40, stepAt: 400, checkpointing: 1, computeWindow: [0.5] }]);
    const beats: BeatWrite[] = Array.from({ length: N }, (_, nodeId) => ({ nodeId, incarnation: 0, step: nodeId === 3 ? null : nodeId, stepAt: nodeId === 3 ? null : 900, checkpointing: null, computeWindow: nodeId === 5 ? [1.5, 2] : null }));
    beats.push({ nodeId: N + 1, incarnation: 0, step: 1, stepAt: 1, checkpointing: 1, computeWindow: null }); // no such node
    const written = await store.transaction((tx) => tx.nodes.recordBeats('j', 1000, beats));
    expect(written).toBe(N);
    const nodes = await store.nodes.listByJob('j');
    const at = (nodeId: number, incarnation = 0) => nodes.find((n) => n.nodeId === nodeId && n.incarnation === incarnation)!;
    expect(at(3)).toMatchObject({ lastHeartbeatAt: 1000, step: 40, stepAt: 400, checkpointing: 1, computeWindow: [0.5] });
    expect(at(5)).toMatchObject({ lastHeartbeatAt: 1000, step: 5, stepAt: 900, checkpointing: 0, computeWindow: [1.5, 2] });
    expect(at(N - 1)).toMatchObject({ lastHeartbeatAt: 1000, step: N - 1, stepAt: 900 });
    expect(nodes.filter((n) => n.incarnation === 0).every((n) => n.lastHeartbeatAt === 1000)).toBe(true);
    expect(at(7, 1)).toMatchObject({ lastHeartbeatAt: null, step: null });
    expect((await store.nodes.get({ jobId: 'other', nodeId: 7, incarnation: 0 }))).toMatchObject({ lastHeartbeatAt: null, step: null });
  });

  it("sums up a job's running nodes in one row: how many, the latest step and when, whether any saves a checkpoint", async () => {
    const store = await h.open({ now: () => 500 });
    expect(await store.nodes.runningSummary('j')).toEqual({ count: 0, lastStepAt: null, step: null, checkpointing: false });
    await store.transaction(async (tx) => {
      for (const nodeId of [0, 1, 2]) await tx.nodes.upsertLaunch({ jobId: 'j', nodeId, incarnation: 0, backend: 'local', status: 'running' });
      await tx.nodes.upsertLaunch({ jobId: 'j', nodeId: 3, incarnation: 0, backend: 'local', status: 'failed' });
      await tx.nodes.upsertLaunch({ jobId: 'other', nodeId: 0, incarnation: 0, backend: 'local', status: 'running' });
    });
    expect(await store.nodes.runningSummary('j')).toEqual({ count: 3, lastStepAt: null, step: null, checkpointing: false });
    await store.nodes.recordBeats('j', 900, [
      { nodeId: 0, incarnation: 0, step: 40, stepAt: 800, checkpointing: null, computeWindow: null },
      { nodeId: 1, incarnation: 0, step: 41, stepAt: 850, checkpointing: 1, computeWindow: null },
      // Not running: neither its later step nor anything else counts.
      { nodeId: 3, incarnation: 0, step: 99, stepAt: 890, checkpointing: null, computeWindow: null },
    ]);
    await store.nodes.recordBeats('other', 900, [{ nodeId: 0, incarnation: 0, step: 500, stepAt: 895, checkpointing: 1, computeWindow: null }]);
    expect(await store.nodes.runningSummary('j')).toEqual({ count: 3, lastStepAt: 850, step: 41, checkpointing: true });
  });

  it('records a launch once per (job, node, incarnation)', async () => {
    const store = await h.open({ now: () => 500 });
    const first = await store.nodes.upsertLaunch({ ...key, backend: 'local', status: 'launching', resources: { cpu: 2 } });
    expect(first.created).toBe(true);
    expect(first.node).toEqual({
      ...key,
      rank: null,
      status: 'launching',
      backend: 'local',
      pid: null,
      host: null,
      logPath: null,
      exitCode: null,
      exitSignal: null,
      exitReason: null,
      processRestarts: 0,
      step: null,
      stepAt: null,
      checkpointing: 0,
      lastHeartbeatAt: null,
      createdAt: 500,
      startedAt: null,
      endedAt: null,
      resources: { cpu: 2 },
      pendingReason: null,
      computeWindow: [],
      stragglerAt: null,
    });
    await store.nodes.update(key, { status: 'running' });
    const retry = await store.nodes.upsertLaunch({ ...key, backend: 'local', status: 'launching' });
    expect(retry.created).toBe(false);
    expect(retry.node.status).toBe('running');
    const next = await store.nodes.upsertLaunch({ ...key, incarnation: 1, backend: 'local', status: 'launching' });
    expect(next.created).toBe(true);
  });

  it('gives one winner when the same launch is recorded concurrently', async () => {
    const store = await h.open();
    const results = await Promise.all(
      Array.from({ length: 6 }, () => store.nodes.upsertLaunch({ ...key, backend: 'local', status: 'launching' })),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
  });

  it('updates fields, counts restarts and finds the latest incarnation', async () => {
    const store = await h.open();
    await store.nodes.upsertLaunch({ ...key, backend: 'local', status: 'launching' });
    await store.nodes.upsertLaunch({ ...key, incarnation: 1, backend: 'local', status: 'launching' });
    await store.nodes.upsertLaunch({ ...key, nodeId: 0, backend: 'local', status: 'running' });
    const exit = { status: 'failed', exitCode: 137, exitSignal: 'SIGKILL', exitReason: 'OOMKilled', endedAt: 9000, pid: 4242 };
    expect(await store.nodes.update(key, exit)).toBe(true);
    expect(await store.nodes.get(key)).toMatchObject(exit);
    expect(await store.nodes.update(key, {})).toBe(true);
    await store.nodes.update(key, { resources: { gpu: 1 } });
    expect((await store.nodes.get(key))?.resources).toEqual({ gpu: 1 });
    await store.nodes.update(key, { resources: null });
    expect((await store.nodes.get(key))?.resources).toBeNull();
    expect(await store.nodes.update({ ...key, incarnation: 9 }, { status: 'lost' })).toBe(false);
    expect(await store.nodes.chargeProcessRestart(key, 1)).toBe(1);
    expect(await store.nodes.chargeProcessRestart(key, 1)).toBe(2);
    expect(await store.nodes.chargeProcessRestart(key, -1)).toBe(1);
    expect(await store.nodes.chargeProcessRestart(key, -1)).toBe(0);
    expect(await store.nodes.chargeProcessRestart(key, -1), 'a refund never goes below 0').toBe(0);
    expect(await store.nodes.chargeProcessRestart({ ...key, incarnation: 9 }, 1)).toBeUndefined();
    expect((await store.nodes.latest('j', 1))?.incarnation).toBe(1);
    expect(await store.nodes.latest('j', 7)).toBeUndefined();
    const all = await store.nodes.listByJob('j');
    expect(all.map((n) => [n.nodeId, n.incarnation])).toEqual([[0, 0], [1, 0], [1, 1]]);
    const running = await store.nodes.listByJob('j', { statuses: ['running'] });
    expect(running.map((n) => n.nodeId)).toEqual([0]);
  });

  it('finds running nodes whose last sign of life is older than a cutoff', async () => {
    let now = 1000;
    const store = await h.open({ now: () => now });
    for (const nodeId of [0, 1, 2]) {
      await store.nodes.upsertLaunch({ jobId: 'j', nodeId, incarnation: 0, backend: 'local', status: 'running' });
    }
    await store.nodes.update({ jobId: 'j', nodeId: 0, incarnation: 0 }, { lastHeartbeatAt: 5000 });
    await store.nodes.update({ jobId: 'j', nodeId: 1, incarnation: 0 }, { lastHeartbeatAt: 2000 });
    await store.nodes.update({ jobId: 'j', nodeId: 2, incarnation: 0 }, { status: 'succeeded' });
    const silent = await store.nodes.listSilentSince('j', 3000, ['running']);
    expect(silent.map((n) => n.nodeId)).toEqual([1]);
    now = 9999;
    await store.nodes.upsertLaunch({ jobId: 'j', nodeId: 3, incarnation: 0, backend: 'local', status: 'running' });
    expect((await store.nodes.listSilentSince('j', 6000, ['running'])).map((n) => n.nodeId)).toEqual([0, 1]);
  });
});
