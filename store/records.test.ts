import { expect, it } from 'vitest';
import type { NewJob, NodeEvent } from './index.ts';
import { describeEachStore, testJobSpec } from './testing.ts';

const JOB: NewJob = { id: 'j', workflowId: 'job-j', user: 'u', group: 'g', backend: 'local', spec: testJobSpec(), phase: 'Running', token: 't' };

describeEachStore('node events', (h) => {
  it('appends events and pages through them with a cursor', async () => {
    const store = await h.open({ now: () => 77 });
    await store.jobs.create(JOB);
    expect(await store.nodeEvents.latestId('j')).toBe(0);
    const a = await store.nodeEvents.append({ jobId: 'j', nodeId: 1, incarnation: 0, kind: 'node_failed', data: { exitCode: 1, round: 1, restarts: 0 } });
    const b = await store.nodeEvents.append({ jobId: 'j', kind: 'node_stopped', data: {} });
    await store.nodeEvents.append({ jobId: 'other', kind: 'epoch_done', data: { epoch: 0 } });
    const c = await store.nodeEvents.append({ jobId: 'j', kind: 'round_opened', data: { round: 2, cause: 'scale to 2 nodes' } });
    expect(a).toEqual({ id: a.id, jobId: 'j', nodeId: 1, incarnation: 0, kind: 'node_failed', data: { exitCode: 1, round: 1, restarts: 0 }, createdAt: 77, source: 'agent', rank: null });
    expect(b).toMatchObject({ nodeId: null, incarnation: null, data: {} });
    expect(await store.nodeEvents.listAfter('j', 0, 2)).toEqual([a, b]);
    expect(await store.nodeEvents.listAfter('j', b.id, 10)).toEqual([c]);
    expect(await store.nodeEvents.listAfter('j', c.id, 10)).toEqual([]);
    expect(await store.nodeEvents.latestId('j')).toBe(c.id);
  });

  it('refuses data its kind does not describe, and writes nothing', async () => {
    const store = await h.open();
    await store.jobs.create(JOB);
    // Outside the types, as a writer's bug would be at run time.
    const malformed = { jobId: 'j', kind: 'epoch_done', data: { epoch: 'one' } } as unknown as Parameters<typeof store.nodeEvents.append>[0];
    await expect(store.nodeEvents.append(malformed)).rejects.toThrow(/epoch_done event of job j .*data\.epoch:/);
    const extra = { jobId: 'j', kind: 'epoch_done', data: { epoch: 1, note: 'x' } } as unknown as Parameters<typeof store.nodeEvents.append>[0];
    await expect(store.nodeEvents.append(extra)).rejects.toThrow('data.note: not a field of epoch_done');
    expect(await store.nodeEvents.latestId('j')).toBe(0);
  });

  it('never lets a reader skip an event while writers append concurrently', async () => {
    const store = await h.open();
    await store.jobs.create(JOB);
    const writers = 8;
    const perWriter = 15;
    const total = writers * perWriter;
    const appended: number[] = [];
    const writing = Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) {
          appended.push((await store.nodeEvents.append({ jobId: 'j', nodeId: w, kind: 'epoch_done', data: { epoch: i } })).id);
        }
      }),
    );
    const seen: NodeEvent[] = [];
    let cursor = 0;
    const deadline = Date.now() + 30_000;
    while (seen.length < total && Date.now() < deadline) {
      const page = await store.nodeEvents.listAfter('j', cursor, 7);
      seen.push(...page);
      cursor = page.at(-1)?.id ?? cursor;
    }
    await writing;
    const ids = seen.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort((x, y) => x - y)).toEqual(appended.sort((x, y) => x - y));
  });
});

describeEachStore('metrics', (h) => {
  it('records samples, lists them by job and name, and deletes old ones', async () => {
    const store = await h.open({ now: () => 3000 });
    await store.metrics.record([
      { jobId: 'j', nodeId: 0, incarnation: 0, name: 'step_time', value: 0.25, labels: { rank: '0' }, createdAt: 1000 },
      { jobId: 'j', nodeId: 1, incarnation: 0, name: 'step_time', value: 0.5, createdAt: 2000 },
      { jobId: 'j', name: 'loss', value: 2.5 },
      { jobId: 'k', name: 'step_time', value: 9, createdAt: 1500 },
    ]);
    const steps = await store.metrics.list('j', 'step_time');
    expect(steps.map((m) => [m.nodeId, m.value, m.labels])).toEqual([
      [0, 0.25, { rank: '0' }],
      [1, 0.5, {}],
    ]);
    expect(typeof steps[0]?.id).toBe('number');
    expect((await store.metrics.list('j', 'step_time', { since: 1500 })).map((m) => m.value)).toEqual([0.5]);
    expect((await store.metrics.list('j', 'step_time', { nodeId: 0 })).map((m) => m.value)).toEqual([0.25]);
    expect((await store.metrics.list('j', 'loss'))[0]).toMatchObject({ nodeId: null, createdAt: 3000 });
    expect(await store.metrics.deleteOlderThan(2000)).toBe(2);
    expect((await store.metrics.list('j', 'step_time')).map((m) => m.value)).toEqual([0.5]);
    expect(await store.metrics.list('k', 'step_time')).toEqual([]);
  });

  it('records a batch larger than one INSERT', async () => {
    const store = await h.open();
    const samples = Array.from({ length: 1201 }, (_, i) => ({ jobId: 'j', name: 'x', value: i, createdAt: i }));
    await store.metrics.record(samples);
    expect(await store.metrics.list('j', 'x', { limit: 5000 })).toHaveLength(1201);
  });
});

describeEachStore('checkpoints', (h) => {
  it('keeps one report per rank and step, the latest winning', async () => {
    let now = 10;
    const store = await h.open({ now: () => now });
    const big = 5 * 1024 ** 3;
    await store.checkpoints.report({ jobId: 'j', step: 100, rank: 1, path: '/ckpt/100/1', bytes: big, checksum: 'a' });
    await store.checkpoints.report({ jobId: 'j', step: 100, rank: 0, path: '/ckpt/100/0', bytes: 1, checksum: 'b' });
    now = 20;
    await store.checkpoints.report({ jobId: 'j', step: 100, rank: 0, path: '/ckpt/100/0b', bytes: 2, checksum: 'c' });
    expect(await store.checkpoints.listForStep('j', 100)).toEqual([
      { jobId: 'j', step: 100, rank: 0, path: '/ckpt/100/0b', bytes: 2, checksum: 'c', reportedAt: 20 },
      { jobId: 'j', step: 100, rank: 1, path: '/ckpt/100/1', bytes: big, checksum: 'a', reportedAt: 10 },
    ]);
  });

  it('commits a step once and finds the latest commit', async () => {
    const store = await h.open({ now: () => 50 });
    expect(await store.checkpoints.latestCommit('j')).toBeUndefined();
    expect(await store.checkpoints.commit({ jobId: 'j', step: 100, worldSize: 2, shardCursor: { epoch: 0, done: 4 } })).toBe(true);
    expect(await store.checkpoints.commit({ jobId: 'j', step: 100, worldSize: 3, shardCursor: {} })).toBe(false);
    await store.checkpoints.commit({ jobId: 'j', step: 200, worldSize: 2, shardCursor: { epoch: 1, done: 0 } });
    expect(await store.checkpoints.getCommit('j', 100)).toEqual({
      jobId: 'j',
      step: 100,
      worldSize: 2,
      shardCursor: { epoch: 0, done: 4 },
      committedAt: 50,
    });
    expect((await store.checkpoints.latestCommit('j'))?.step).toBe(200);
    expect(await store.checkpoints.getCommit('j', 300)).toBeUndefined();
  });
});

describeEachStore('brain configs', (h) => {
  const config = (name: string, priority: number) => ({
    name,
    include: { user: ['ada'] },
    exclude: {},
    configure: { memory: '8Gi' },
    priority,
  });

  it('publishes snapshots once and serves the latest of every source', async () => {
    const store = await h.open({ now: () => 5 });
    expect(await store.brainConfigs.publishSnapshot('mysql', 1, [config('old', 1)])).toBe(true);
    expect(await store.brainConfigs.publishSnapshot('mysql', 2, [config('low', 1), config('high', 9)])).toBe(true);
    expect(await store.brainConfigs.publishSnapshot('mysql', 2, [config('dup', 5)])).toBe(false);
    expect(await store.brainConfigs.publishSnapshot('yaml', 7, [config('mid', 5)])).toBe(true);
    expect(await store.brainConfigs.publishSnapshot('empty', 1, [])).toBe(true);
    expect(await store.brainConfigs.latestSnapshot('mysql')).toEqual({ source: 'mysql', version: 2, publishedAt: 5 });
    expect(await store.brainConfigs.latestSnapshot('nope')).toBeUndefined();
    const v2 = await store.brainConfigs.listSnapshot('mysql', 2);
    expect(v2.map((c) => c.name)).toEqual(['high', 'low']);
    expect(v2[0]).toMatchObject({ source: 'mysql', version: 2, include: { user: ['ada'] }, exclude: {}, configure: { memory: '8Gi' } });
    expect((await store.brainConfigs.listLatest()).map((c) => `${c.source}:${c.name}`)).toEqual([
      'mysql:high',
      'yaml:mid',
      'mysql:low',
    ]);
  });
});
