// Include / Exclude matching and merge precedence, as tables.
import { describe, expect, it } from 'vitest';
import { configApplies, matchConfigs, type SourcedConfig } from './match.ts';
import { mergeReads, parseBrainConfigs, parseBrainConfigYaml, type JobCharacteristics, type Selector } from './schema.ts';

const job = (over: Partial<JobCharacteristics> = {}): JobCharacteristics => ({
  name: 'resnet',
  user: 'ada',
  group: 'vision',
  cluster: 'local',
  labels: { team: 'cv', tier: 'prod' },
  ...over,
});

const config = (name: string, o: { include?: Selector; exclude?: Selector; priority?: number; configure?: Record<string, unknown>; source?: string } = {}): SourcedConfig => ({
  name,
  source: o.source ?? 'yaml',
  priority: o.priority ?? 0,
  include: o.include ?? {},
  exclude: o.exclude ?? {},
  configure: o.configure ?? { from: name },
});

describe('configApplies', () => {
  const cases: [string, Selector, Selector, boolean][] = [
    ['empty include matches every job', {}, {}, true],
    ['single key matches', { user: 'ada' }, {}, true],
    ['single key does not match', { user: 'bob' }, {}, false],
    ['every include key must match', { user: 'ada', group: 'nlp' }, {}, false],
    ['several keys all matching', { user: 'ada', group: 'vision', cluster: 'local', name: 'resnet' }, {}, true],
    ['a list matches when any element does', { user: ['bob', 'ada'] }, {}, true],
    ['a list with no matching element', { user: ['bob', 'eve'] }, {}, false],
    ['labels match key and value', { labels: { team: 'cv' } }, {}, true],
    ['label value list', { labels: { tier: ['dev', 'prod'] } }, {}, true],
    ['label with another value', { labels: { team: 'nlp' } }, {}, false],
    ['label the job lacks', { labels: { owner: 'ada' } }, {}, false],
    ['exclude wins over a matching include', { user: 'ada' }, { name: 'resnet' }, false],
    ['any one exclude key rules out', {}, { user: 'bob', group: 'vision' }, false],
    ['exclude that does not match keeps it', { user: 'ada' }, { group: 'nlp', labels: { tier: 'dev' } }, true],
    ['exclude by label list', {}, { labels: { tier: ['prod'] } }, false],
  ];
  it.each(cases)('%s', (_title, include, exclude, applies) => {
    expect(configApplies({ include, exclude }, job())).toBe(applies);
  });
});

describe('matchConfigs precedence', () => {
  it('merges nothing when no configuration matches', () => {
    expect(matchConfigs([config('a', { include: { user: 'bob' } })], job())).toEqual({ configure: {}, applied: [], origin: {} });
  });

  const cases: [string, SourcedConfig[], Record<string, unknown>, string[]][] = [
    [
      'higher priority wins over lower',
      [config('high', { priority: 10, configure: { x: 'high' } }), config('low', { priority: 1, include: { user: 'ada', group: 'vision' }, configure: { x: 'low' } })],
      { x: 'high' },
      ['yaml/low', 'yaml/high'],
    ],
    [
      'at equal priority the more specific include wins',
      [config('specific', { include: { user: 'ada', labels: { team: 'cv' } }, configure: { x: 'specific' } }), config('general', { configure: { x: 'general' } })],
      { x: 'specific' },
      ['yaml/general', 'yaml/specific'],
    ],
    [
      'then source and name order: later wins',
      [config('b', { configure: { x: 'b' } }), config('a', { configure: { x: 'a' } })],
      { x: 'b' },
      ['yaml/a', 'yaml/b'],
    ],
    [
      'objects merge key by key, arrays replace',
      [
        config('base', { configure: { optimizer: { oomFactor: 1.5, memoryCapMb: 1000 }, tags: ['a', 'b'] } }),
        config('team', { priority: 1, configure: { optimizer: { oomFactor: 3 }, tags: ['c'] } }),
      ],
      { optimizer: { oomFactor: 3, memoryCapMb: 1000 }, tags: ['c'] },
      ['yaml/base', 'yaml/team'],
    ],
    [
      'excluded configurations take no part',
      [config('all', { configure: { x: 'all' } }), config('not-ada', { priority: 5, exclude: { user: 'ada' }, configure: { x: 'no' } })],
      { x: 'all' },
      ['yaml/all'],
    ],
  ];
  it.each(cases)('%s', (_title, configs, configure, applied) => {
    const merged = matchConfigs(configs, job());
    expect(merged.configure).toEqual(configure);
    expect(merged.applied).toEqual(applied);
  });

  it('names the configuration each top-level key came from', () => {
    const merged = matchConfigs([config('base', { configure: { a: 1, b: 1 } }), config('over', { priority: 1, configure: { b: 2 } })], job());
    expect(merged.origin).toEqual({ a: 'yaml/base', b: 'yaml/over' });
  });
});

describe('parseBrainConfigs', () => {
  it('accepts one configuration, a list, or {configs: [...]}', () => {
    const one = { name: 'a', configure: { x: 1 } };
    expect(parseBrainConfigs(one, 'f.yaml').configs.map((c) => c.where)).toEqual(['f.yaml']);
    expect(parseBrainConfigs([one, { ...one, name: 'b' }], 'f.yaml').configs.map((c) => c.where)).toEqual(['f.yaml[0]', 'f.yaml[1]']);
    expect(parseBrainConfigs({ configs: [one] }, 'f.yaml').configs[0]!.config).toMatchObject({ name: 'a', priority: 0, include: {}, exclude: {} });
  });

  it('rejects a bad entry alone, naming the file, entry and every bad field, and serves the rest', () => {
    const read = parseBrainConfigs([{ name: 'a', configure: {} }, { name: 'b', include: { usr: 'x' } }], 'team.yaml');
    expect(read.configs.map((c) => c.config.name)).toEqual(['a']);
    expect(read.errors).toHaveLength(1);
    expect(read.errors[0]).toContain('team.yaml[1].include');
    expect(read.errors[0]).toContain('team.yaml[1].configure');
  });

  // [optimizer settings, the field named in the error, or null when valid]
  const settings: [object, string | null][] = [
    [{ oomFactor: 3, efficiencyThreshold: 0.5 }, null],
    [{ efficiencyThreshold: 1 }, null],
    [{ efficiencyThreshold: 2, oomFactor: 3 }, 'configure.optimizer.efficiencyThreshold'],
    [{ efficiencyThreshold: 0 }, 'configure.optimizer.efficiencyThreshold'],
    [{ oomFactor: 0.5 }, 'configure.optimizer.oomFactor'],
    [{ percentile: 0 }, 'configure.optimizer.percentile'],
    [{ minSamples: 0 }, 'configure.optimizer.minSamples'],
    [{ memoryCapBytes: -1 }, 'configure.optimizer.memoryCapBytes'],
    [{ oomFactr: 2 }, 'configure.optimizer'],
  ];
  it.each(settings)('optimizer settings %j: error at %s', (optimizer, field) => {
    const read = parseBrainConfigs({ name: 'tuned', configure: { optimizer, queue: 'gpu' } }, 'tune.yaml');
    if (field === null) expect(read).toEqual({ configs: [expect.objectContaining({ where: 'tune.yaml' })], errors: [] });
    else {
      expect(read.configs).toEqual([]);
      expect(read.errors[0]).toContain(`tune.yaml.${field}`);
    }
  });
});

describe('parseBrainConfigYaml and mergeReads', () => {
  it('rejects invalid YAML alone with its line, and a duplicate name naming both places', () => {
    const read = mergeReads([
      parseBrainConfigYaml('name: a\nconfigure: {q: 1}\n', 'a.yaml'),
      parseBrainConfigYaml('name: [oops\n', 'broken.yaml'),
      parseBrainConfigYaml('- {name: b, configure: {}}\n- {name: a, configure: {q: 2}}\n', 'b.yaml'),
    ]);
    expect(read.configs.map((c) => `${c.where}:${c.config.name}`)).toEqual(['a.yaml:a', 'b.yaml[0]:b']);
    expect(read.errors).toHaveLength(2);
    expect(read.errors[0]).toMatch(/^broken\.yaml:\d+:\d+: invalid YAML/);
    expect(read.errors[1]).toContain('b.yaml[1]: configuration name "a" is already used in a.yaml');
  });
});
