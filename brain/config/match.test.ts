// Include / Exclude matching and merge precedence, as tables.
import { describe, expect, it } from 'vitest';
import { configApplies, matchConfigs, type SourcedConfig } from './match.ts';
import type { JobCharacteristics, Selector } from './schema.ts';

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
