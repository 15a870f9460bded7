// The configuration schema entry by entry: every optimizer setting's range, each problem named
// with its place and field and the value given, a bad entry rejected alone, duplicates naming both.
import { describe, expect, it } from 'vitest';
import { DEFAULT_OPTIMIZER_SETTINGS } from '../optimizers/types.ts';
import { mergeReads, optimizerSettingsSchema, parseBrainConfigs, parseBrainConfigYaml } from './schema.ts';

/** The one problem of a configuration with these optimizer settings, or null when it is valid. */
function optimizerProblem(optimizer: Record<string, unknown>): string | null {
  const read = parseBrainConfigs({ name: 'tuned', configure: { optimizer, queue: 'gpu' } }, 'configs/team-a.yaml');
  if (read.configs.length === 1) return null;
  expect(read.configs).toEqual([]);
  return read.errors.join('\n');
}

describe('optimizer settings ranges', () => {
  // [setting, valid values, [invalid value, the reason said]…]
  const ranges: [string, unknown[], [unknown, string][]][] = [
    ['percentile', [0.01, 0.5, 1], [[0, 'must be a number in (0, 1]'], [1.01, 'must be a number in (0, 1]'], [-1, 'must be a number in (0, 1]']]],
    ['efficiencyThreshold', [0.001, 0.7, 1], [[0, 'must be a number in (0, 1]'], [2, 'must be a number in (0, 1]'], ['0.7', 'must be a number in (0, 1]']]],
    ['margin', [0, 0.2, 10], [[-0.1, 'must be a number in [0, 10]'], [11, 'must be a number in [0, 10]']]],
    ['oomFactor', [1, 1.5, 2, 100], [[0.5, 'must be a number in [1, 100]'], [0, 'must be a number in [1, 100]'], [101, 'must be a number in [1, 100]']]],
    ['historyJobs', [1, 20, 1000], [[0, 'must be an integer in [1, 1000]'], [2.5, 'must be an integer in [1, 1000]'], [1001, 'must be an integer in [1, 1000]']]],
    ['minSamples', [1, 3, 100_000], [[0, 'must be an integer in [1, 100000]'], [1.5, 'must be an integer in [1, 100000]'], [null, 'must be an integer in [1, 100000]']]],
    ['memoryCapBytes', [1, 2 ** 36, 2 ** 50], [[0, 'must be a positive integer'], [-1, 'must be a positive integer'], [1.5, 'must be a positive integer'], [2 ** 60, 'must be a positive integer']]],
  ];

  it('covers every setting the optimizers read', () => {
    expect(ranges.map(([setting]) => setting).sort()).toEqual(Object.keys(DEFAULT_OPTIMIZER_SETTINGS).sort());
    expect(Object.keys(optimizerSettingsSchema.shape).sort()).toEqual(Object.keys(DEFAULT_OPTIMIZER_SETTINGS).sort());
  });

  it('accepts every default', () => {
    expect(optimizerProblem({ ...DEFAULT_OPTIMIZER_SETTINGS })).toBeNull();
  });

  const valid = ranges.flatMap(([setting, values]) => values.map((v) => [setting, v] as const));
  it.each(valid)('accepts %s: %j', (setting, value) => {
    expect(optimizerProblem({ [setting]: value })).toBeNull();
  });

  const invalid = ranges.flatMap(([setting, , bad]) => bad.map(([v, reason]) => [setting, v, reason] as const));
  it.each(invalid)('rejects %s: %j, saying %s and the value given', (setting, value, reason) => {
    expect(optimizerProblem({ [setting]: value })).toBe(`configs/team-a.yaml: configure.optimizer.${setting}: ${reason} (got ${JSON.stringify(value)})`);
  });

  it('rejects the whole entry for one bad setting, naming only the bad one (the valid oomFactor is not the problem)', () => {
    expect(optimizerProblem({ efficiencyThreshold: 2, oomFactor: 3 })).toBe('configs/team-a.yaml: configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2)');
  });

  it('names an unknown setting and lists the known ones', () => {
    expect(optimizerProblem({ oomFactr: 2 })).toBe(
      'configs/team-a.yaml: configure.optimizer.oomFactr: unknown field (known: percentile, margin, historyJobs, oomFactor, memoryCapBytes, efficiencyThreshold, minSamples)',
    );
  });
});

describe('one entry, every problem', () => {
  // [entry, the problems said, one a line]
  const entries: [unknown, string[]][] = [
    [{ name: 'a', include: { usr: 'x' }, configure: {} }, ['f.yaml: include.usr: unknown field (known: user, group, cluster, name, labels)']],
    [{ name: 'a', include: { user: [] }, exclude: { group: '' }, configure: {} }, ['f.yaml: include.user: must not be an empty list (got [])', 'f.yaml: exclude.group: must not be empty (got "")']],
    [{ name: 'a', include: { user: 3 }, configure: {} }, ['f.yaml: include.user: must be a non-empty string or a non-empty list of them (got 3)']],
    [{ name: 'a', priority: 1.5, configure: {} }, ['f.yaml: priority: must be an integer (got 1.5)']],
    [{ name: '', configure: {} }, ['f.yaml: name: must be a name of 1 to 255 characters (got "")']],
    [{ name: 'a' }, ['f.yaml: configure: required']],
    [{ name: 'a', configure: 'gpu' }, ['f.yaml: configure: must be a map of the values to configure (got "gpu")']],
    [{ name: 'a', configure: {}, priorty: 2 }, ['f.yaml: priorty: unknown field (known: name, priority, include, exclude, configure)']],
    ['just text', ['f.yaml: must be a configuration (a map with name, include, exclude, configure) (got "just text")']],
  ];
  it.each(entries)('%j: %j', (entry, problems) => {
    expect(parseBrainConfigs(entry, 'f.yaml')).toEqual({ configs: [], errors: problems });
  });
});

describe('parseBrainConfigs', () => {
  it('accepts one configuration, a list, or {configs: [...]}', () => {
    const one = { name: 'a', configure: { x: 1 } };
    expect(parseBrainConfigs(one, 'f.yaml').configs.map((c) => c.where)).toEqual(['f.yaml']);
    expect(parseBrainConfigs([one, { ...one, name: 'b' }], 'f.yaml').configs.map((c) => c.where)).toEqual(['f.yaml[0]', 'f.yaml[1]']);
    expect(parseBrainConfigs({ configs: [one] }, 'f.yaml').configs[0]!.config).toMatchObject({ name: 'a', priority: 0, include: {}, exclude: {} });
  });

  it('rejects a bad entry of a list alone, naming its index, name and every bad field, and serves the rest', () => {
    const read = parseBrainConfigs([{ name: 'a', configure: {} }, { name: 'b', include: { usr: 'x' } }, { name: 'c', configure: { q: 1 } }], 'team.yaml');
    expect(read.configs.map((c) => c.config.name)).toEqual(['a', 'c']);
    expect(read.errors).toEqual([
      'team.yaml[1] (configuration "b"): include.usr: unknown field (known: user, group, cluster, name, labels)',
      'team.yaml[1] (configuration "b"): configure: required',
    ]);
  });
});

describe('parseBrainConfigYaml and mergeReads', () => {
  it('rejects invalid YAML alone with its line, and a duplicate name naming both places', () => {
    const read = mergeReads([
      parseBrainConfigYaml('name: a\nconfigure: {q: 1}\n', 'a.yaml'),
      parseBrainConfigYaml('name: [oops\n', 'broken.yaml'),
      parseBrainConfigYaml('- {name: b, configure: {}}\n- {name: a, configure: {q: 2}}\n', 'b.yaml'),
      parseBrainConfigYaml('', 'empty.yaml'),
    ]);
    expect(read.configs.map((c) => `${c.where}:${c.config.name}`)).toEqual(['a.yaml:a', 'b.yaml[0]:b']);
    expect(read.errors).toHaveLength(2);
    expect(read.errors[0]).toMatch(/^broken\.yaml:\d+:\d+: invalid YAML/);
    expect(read.errors[1]).toBe('b.yaml[1]: configuration name "a" is already used in a.yaml; names must be unique within a source (this one is ignored)');
  });
});
