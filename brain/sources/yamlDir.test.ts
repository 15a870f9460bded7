// The YAML-folder source through the sync activity that publishes what the Brain serves: a broken
// file or entry is rejected alone with its path and field, every valid one is served, an edit to
// a valid file is served while a broken one sits beside it, and a duplicate name names both files.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrainActivities } from '../../activities/brain.ts';
import { createLogger } from '../../common/logger.ts';
import { openStore, type Store } from '../../store/index.ts';
import { BrainService } from '../service.ts';
import { YamlDirSource } from './yamlDir.ts';

describe('brain config YAML folder source', () => {
  let dir: string;
  let store: Store;
  const write = (file: string, text: string) => writeFileSync(path.join(dir, file), text);
  const sync = () => createBrainActivities({ store, sources: [new YamlDirSource('team', dir)], logger: createLogger('test', 'silent') }).syncBrainSource({ source: 'team' });
  const served = async () => Object.fromEntries((await new BrainService(store).configs()).map((c) => [c.name, c.configure]));

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'rover-brain-yaml-'));
    store = await openStore(`sqlite:${path.join(dir, 'store.db')}`);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves every valid file and entry beside broken ones, naming each by path and field, and takes an edit beside them', async () => {
    write('team.yaml', 'name: cv\ninclude: {labels: {team: cv}}\nconfigure: {queue: v1}\n');
    write('tuned.yaml', 'name: tuned\nconfigure: {optimizer: {efficiencyThreshold: 2, oomFactor: 3}}\n');
    write('broken.yml', 'name: [oops\n');
    write('list.yaml', 'configs:\n  - {name: ok, configure: {optimizer: {oomFactor: 3}}}\n  - {name: typo, include: {usr: ada}, configure: {}}\n');

    const first = await sync();
    expect(first).toMatchObject({ ok: false, version: 1, changed: true, configs: 2, error: null });
    expect(first.rejected).toEqual([
      expect.stringMatching(new RegExp(`^${path.join(dir, 'broken.yml')}:\\d+:\\d+: invalid YAML`)),
      `${path.join(dir, 'list.yaml')}[1] (configuration "typo"): include.usr: unknown field (known: user, group, cluster, name, labels)`,
      `${path.join(dir, 'tuned.yaml')}: configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2)`,
    ]);
    expect(await served()).toEqual({ cv: { queue: 'v1' }, ok: { optimizer: { oomFactor: 3 } } });

    write('team.yaml', 'name: cv\ninclude: {labels: {team: cv}}\nconfigure: {queue: v2}\n');
    expect(await sync()).toMatchObject({ version: 2, changed: true, rejected: first.rejected });
    expect(await served()).toEqual({ cv: { queue: 'v2' }, ok: { optimizer: { oomFactor: 3 } } });

    // Nothing changed: the same snapshot is served, the rejected entries still reported.
    expect(await sync()).toMatchObject({ ok: false, version: 2, changed: false, rejected: first.rejected });

    for (const f of ['tuned.yaml', 'broken.yml', 'list.yaml']) rmSync(path.join(dir, f));
    expect(await sync()).toMatchObject({ ok: true, version: 3, changed: true, configs: 1, rejected: [] });
  });

  it('keeps the first of two configurations with one name and names both files', async () => {
    write('a-team.yaml', 'name: cv\nconfigure: {queue: first}\n');
    write('b-copy.yaml', '- {name: other, configure: {}}\n- {name: cv, configure: {queue: second}}\n');
    const read = await sync();
    expect(read.rejected).toEqual([
      `${path.join(dir, 'b-copy.yaml')}[1]: configuration name "cv" is already used in ${path.join(dir, 'a-team.yaml')}; names must be unique within a source (this one is ignored)`,
    ]);
    expect(await served()).toEqual({ cv: { queue: 'first' }, other: {} });
  });

  it('keeps its last snapshot when the folder cannot be read, saying why (the last rejected entries stand)', async () => {
    write('team.yaml', 'name: cv\nconfigure: {queue: v1}\n');
    write('bad.yaml', 'name: bad\nconfigure: {optimizer: {oomFactor: 0.5}}\n');
    await sync();
    const source = new YamlDirSource('team', path.join(dir, 'gone'));
    const result = await createBrainActivities({ store, sources: [source], logger: createLogger('test', 'silent') }).syncBrainSource({ source: 'team' });
    expect(result).toMatchObject({ ok: false, version: 1, changed: false, configs: 1, error: expect.stringContaining('cannot read the directory') });
    expect(result.rejected).toBeUndefined();
    expect(await served()).toEqual({ cv: { queue: 'v1' } });
  });
});
