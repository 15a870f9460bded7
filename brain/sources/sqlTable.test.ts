// The SQL-table source on both dialects, through the sync activity that publishes what the Brain
// serves: a broken row is rejected alone and named with its field, every valid row is served,
// and an edit to a valid row is served while the broken one sits beside it.
import { expect, it } from 'vitest';
import { createBrainActivities } from '../../activities/brain.ts';
import { createLogger } from '../../common/logger.ts';
import { describeEachStore } from '../../store/testing.ts';
import { BrainService } from '../service.ts';
import { SqlTableSource } from './sqlTable.ts';

describeEachStore('brain config table source', (h) => {
  it('serves every valid row beside broken ones, names each broken row and field, and takes an edit beside them', async () => {
    const store = await h.open();
    const sync = () => createBrainActivities({ store, sources: [new SqlTableSource('db', store)], logger: createLogger('test', 'silent') }).syncBrainSource({ source: 'db' });
    const served = async () => Object.fromEntries((await new BrainService(store).configs()).map((c) => [c.name, c.configure]));
    const put = (name: string, o: { include?: unknown; configure?: unknown } = {}) =>
      store.brainConfigEntries.put({ name, priority: 0, include: o.include ?? {}, exclude: {}, configure: o.configure ?? {} });

    await put('gpu', { include: { group: 'nlp' }, configure: { queue: 'gpu' } });
    await put('oom', { configure: { optimizer: { oomFactor: 3 } } });
    await put('bad', { include: { usr: 'x' } });
    await put('tuned', { configure: { optimizer: { efficiencyThreshold: 2, oomFactor: 3 } } });
    // A row written by hand whose JSON does not parse.
    await store.db.insertInto('brainConfigEntries').values({ name: 'typo', priority: 0, include: '{}', exclude: '{}', configure: '{queue: gpu', updatedAt: 0 }).execute();

    const first = await sync();
    expect(first).toMatchObject({ ok: false, version: 1, changed: true, configs: 2, error: null });
    expect(first.rejected).toEqual([
      'row "bad": include.usr: unknown field (known: user, group, cluster, name, labels)',
      'row "tuned": configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2)',
      'row "typo": configure: not valid JSON (got "{queue: gpu")',
    ]);
    expect(await served()).toEqual({ gpu: { queue: 'gpu' }, oom: { optimizer: { oomFactor: 3 } } });

    // An edit of a valid row is served while the broken ones stay.
    await put('gpu', { include: { group: 'nlp' }, configure: { queue: 'gpu2' } });
    expect(await sync()).toMatchObject({ version: 2, changed: true, rejected: expect.arrayContaining(['row "bad": include.usr: unknown field (known: user, group, cluster, name, labels)']) });
    expect(await new BrainService(store).configFor({ name: 'bert', user: '', group: 'nlp', cluster: '', labels: {} })).toMatchObject({ configure: { queue: 'gpu2' }, applied: ['db/oom', 'db/gpu'] });

    // Fixed rows are served; with no broken row left the read is clean.
    await put('tuned', { configure: { optimizer: { efficiencyThreshold: 0.5, oomFactor: 3 } } });
    expect(await store.brainConfigEntries.remove('bad')).toBe(true);
    expect(await store.brainConfigEntries.remove('typo')).toBe(true);
    expect(await sync()).toMatchObject({ ok: true, version: 3, changed: true, configs: 3, rejected: [] });
    expect(await served()).toEqual({ gpu: { queue: 'gpu2' }, oom: { optimizer: { oomFactor: 3 } }, tuned: { optimizer: { efficiencyThreshold: 0.5, oomFactor: 3 } } });
  });
});
