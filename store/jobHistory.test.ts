// The Brain's history tables on both dialects: summaries, similar jobs, failures, peaks,
// retention, and the SQL-table configuration source.
import { expect, it } from 'vitest';
import { SqlTableSource } from '../brain/sources/sqlTable.ts';
import { METRIC_RSS_BYTES, type NewJobSummary } from './index.ts';
import { describeEachStore } from './testing.ts';

const summary = (jobId: string, o: Partial<NewJobSummary> = {}): NewJobSummary => ({
  jobId, name: 'bert', user: 'ada', group: 'nlp', cluster: 'local', entrypoint: 'python3 train.py', datasetSize: 1000,
  minNodes: 1, maxNodes: 4, initialNodes: 2, memoryBytes: 1000, cpu: 1, phase: 'RUNNING', ...o,
});

describeEachStore('job history', (h) => {
  it('finds ended similar jobs, same name first, newest first, without the job itself', async () => {
    let clock = 1000;
    const store = await h.open({ now: () => clock });
    const end = async (id: string, o: Partial<NewJobSummary> = {}) => {
      await store.jobHistory.recordStart(summary(id, o));
      clock += 10;
      await store.jobHistory.recordOutcome(id, { phase: 'SUCCEEDED', finalNodes: 3, peakRssBytes: 500, peakCpu: 0.5, endedAt: clock });
    };
    await end('bert-1');
    await end('bert-2');
    await end('gpt-1', { name: 'gpt' });
    await end('other-user', { name: 'x', user: 'bob' });
    await store.jobHistory.recordStart(summary('bert-3'));
    const similar = await store.jobHistory.similar({ jobId: 'bert-3', name: 'bert', user: 'ada', group: 'nlp' }, 10);
    expect(similar.map((s) => s.jobId)).toEqual(['bert-2', 'bert-1', 'gpt-1']);
    expect(similar[0]).toMatchObject({ phase: 'SUCCEEDED', runtimeMs: 10, finalNodes: 3, peakRssBytes: 500 });
    expect((await store.jobHistory.similar({ jobId: 'bert-3', name: 'bert', user: 'ada', group: 'nlp' }, 1)).map((s) => s.jobId)).toEqual(['bert-2']);
  });

  it('counts failures and OOMs, reads peaks, and deletes by retention', async () => {
    let clock = 1000;
    const store = await h.open({ now: () => clock });
    await store.jobHistory.recordStart(summary('j'));
    await store.jobHistory.recordFailure({ jobId: 'j', nodeId: 0, incarnation: 0, exitCode: 1, reason: 'MemoryError', oom: true });
    await store.jobHistory.recordFailure({ jobId: 'j', nodeId: 1, incarnation: 0, exitCode: 9, reason: 'lost', oom: false });
    expect(await store.jobHistory.get('j')).toMatchObject({ nodeFailures: 2, oomFailures: 1 });
    expect((await store.jobHistory.failures('j')).map((f) => f.oom)).toEqual([true, false]);
    await store.metrics.record([0, 1].flatMap((n) => [{ jobId: 'j', nodeId: n, name: METRIC_RSS_BYTES, value: 100 + n }, { jobId: 'j', nodeId: n, name: METRIC_RSS_BYTES, value: 50 }]));
    expect(await store.jobHistory.peak('j', METRIC_RSS_BYTES)).toBe(101);
    expect(await store.jobHistory.peak('j', METRIC_RSS_BYTES, 0)).toBe(100);
    expect(await store.jobHistory.peak('j', 'nothing')).toBeNull();
    await store.jobHistory.recordOutcome('j', { phase: 'FAILED', finalNodes: 1, peakRssBytes: 101, peakCpu: null, endedAt: 1500 });
    clock = 5000;
    expect(await store.jobHistory.deleteOlderThan(2000)).toBe(1);
    expect(await store.jobHistory.get('j')).toBeUndefined();
    expect(await store.jobHistory.failures('j')).toEqual([]);
  });

  it('serves the config table as a source; a broken row is rejected alone and named', async () => {
    const store = await h.open();
    await store.brainConfigEntries.put({ name: 'gpu', priority: 1, include: { group: 'nlp' }, exclude: {}, configure: { queue: 'gpu' } });
    await store.brainConfigEntries.put({ name: 'gpu', priority: 2, include: { group: 'nlp' }, exclude: {}, configure: { queue: 'gpu2' } });
    const source = new SqlTableSource('db', store);
    const gpu = { name: 'gpu', priority: 2, include: { group: 'nlp' }, exclude: {}, configure: { queue: 'gpu2' } };
    expect(await source.read()).toEqual({ configs: [{ config: gpu, where: 'row "gpu"' }], errors: [] });
    await store.brainConfigEntries.put({ name: 'bad', priority: 0, include: { usr: 'x' }, exclude: {}, configure: {} });
    await store.brainConfigEntries.put({ name: 'tuned', priority: 0, include: {}, exclude: {}, configure: { optimizer: { efficiencyThreshold: 2, oomFactor: 3 } } });
    const read = await source.read();
    expect(read.configs.map((c) => c.config)).toEqual([gpu]);
    expect(read.errors.join('\n')).toContain('row "bad": include.usr: unknown field');
    expect(read.errors.join('\n')).toContain('row "tuned": configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2)');
    expect(await store.brainConfigEntries.remove('bad')).toBe(true);
    expect((await source.read()).errors).toHaveLength(1);
  });
});
