// The optimizers as tables: inputs → node count / resources / rule.
import { describe, expect, it } from 'vitest';
import { initialPlan, percentile } from './initial.ts';
import { oomPlan } from './oom.ts';
import { optimizerSettings, routeOptimize, UnknownStageError } from './router.ts';
import { runningPlan } from './running.ts';
import { DEFAULT_OPTIMIZER_SETTINGS as S, type JobHistory, type JobShape, type ThroughputAt } from './types.ts';

const GiB = 1024 ** 3;
const shape = (o: Partial<JobShape> = {}): JobShape => ({ minNodes: 1, maxNodes: 4, unit: 1, initialNodes: 2, memoryBytes: 2 * GiB, cpu: 1, ...o });
const hist = (peakRssBytes: number | null, nodes = 2, peakCpu: number | null = 1): JobHistory => ({ jobId: `j${Math.random()}`, peakRssBytes, peakCpu, nodes, oomFailures: 0 });
const tput = (nodes: number, value: number, count = 3): ThroughputAt => ({ nodes, samples: Array.from({ length: count }, () => value) });

describe('percentile', () => {
  it.each([
    [[5], 0.95, 5],
    [[1, 2, 3, 4], 0.5, 2],
    [[4, 1, 3, 2], 0.95, 4],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9, 9],
  ])('%j at p%s is %s', (values, p, expected) => expect(percentile(values, p)).toBe(expected));
});

describe('initialPlan', () => {
  const cases: [string, JobShape, JobHistory[], { nodes: number; memoryBytes: number; cpu: number; rule: string }][] = [
    ['no history: the spec', shape(), [], { nodes: 2, memoryBytes: 2 * GiB, cpu: 1, rule: 'no-history' }],
    ['history without usage: the spec', shape(), [hist(null)], { nodes: 2, memoryBytes: 2 * GiB, cpu: 1, rule: 'no-history' }],
    ['one similar job: its peak + 20%', shape(), [hist(1000, 3, 2)], { nodes: 3, memoryBytes: 1200, cpu: 2.4, rule: 'history-percentile' }],
    ['node count clamped to max', shape({ maxNodes: 2 }), [hist(1000, 8)], { nodes: 2, memoryBytes: 1200, cpu: 1.2, rule: 'history-percentile' }],
    ['node count cut to the unit', shape({ unit: 2, maxNodes: 8, minNodes: 2 }), [hist(1000, 5)], { nodes: 4, memoryBytes: 1200, cpu: 1.2, rule: 'history-percentile' }],
    [
      'p95 of many jobs',
      shape(),
      Array.from({ length: 20 }, (_, i) => hist((i + 1) * 100, 2, 1)),
      { nodes: 2, memoryBytes: 2280, cpu: 1.2, rule: 'history-percentile' },
    ],
  ];
  it.each(cases)('%s', (_t, job, history, want) => {
    const plan = initialPlan(job, history, S);
    expect({ nodes: plan.nodes, memoryBytes: plan.resources?.memoryBytes, cpu: plan.resources?.cpu, rule: plan.rule }).toEqual(want);
    expect(plan.reason.length).toBeGreaterThan(10);
  });
});

describe('oomPlan', () => {
  const cases: [string, { memoryBytes: number; peakRssBytes: number | null }, Partial<typeof S>, number, string][] = [
    ['doubles the limit', { memoryBytes: 100, peakRssBytes: null }, {}, 200, 'oom-factor'],
    ['uses the peak when above the limit', { memoryBytes: 100, peakRssBytes: 150 }, {}, 300, 'oom-factor'],
    ['configured factor', { memoryBytes: 100, peakRssBytes: 90 }, { oomFactor: 1.5 }, 150, 'oom-factor'],
    ['bounded by the cap', { memoryBytes: 100, peakRssBytes: null }, { memoryCapBytes: 160 }, 160, 'oom-factor'],
    ['already at the cap: unchanged', { memoryBytes: 160, peakRssBytes: 150 }, { memoryCapBytes: 160 }, 160, 'oom-cap-reached'],
  ];
  it.each(cases)('%s', (_t, input, settings, memory, rule) => {
    const plan = oomPlan({ nodeId: 1, cpu: 1, ...input }, { ...S, ...settings });
    expect(plan).toMatchObject({ stage: 'oom', nodeId: 1, rule, resources: { memoryBytes: memory, cpu: 1 } });
  });
});

describe('runningPlan', () => {
  const cases: [string, JobShape, number, ThroughputAt[], number | undefined, string][] = [
    ['no samples: none', shape(), 2, [], undefined, 'insufficient-data'],
    ['too few samples at the current size: none', shape(), 2, [tput(2, 100, 2)], undefined, 'insufficient-data'],
    ['only the current size measured: try one more', shape(), 1, [tput(1, 100)], 2, 'scale-up-efficient'],
    ['linear scaling: keep growing', shape(), 2, [tput(1, 100), tput(2, 200)], 3, 'scale-up-efficient'],
    ['at max: stay', shape({ maxNodes: 2 }), 2, [tput(1, 100), tput(2, 190)], 2, 'at-max'],
    ['efficiency fell below the threshold: back to the last good size', shape(), 3, [tput(1, 100), tput(2, 180), tput(3, 190)], 2, 'efficiency-below-threshold'],
    ['a larger size was inefficient: stay', shape(), 2, [tput(1, 100), tput(2, 180), tput(3, 190)], 2, 'larger-size-inefficient'],
    ['steps of the unit', shape({ unit: 2, maxNodes: 8, minNodes: 2 }), 2, [tput(2, 100)], 4, 'scale-up-efficient'],
  ];
  it.each(cases)('%s', (_t, job, current, measured, nodes, rule) => {
    const plan = runningPlan(job, current, measured, S);
    expect(plan.nodes).toBe(nodes);
    expect(plan.rule).toBe(rule);
  });
});

describe('router', () => {
  it('routes by stage and rejects unknown stages listing the stages', () => {
    expect(routeOptimize({ stage: 'initial', job: shape() }, S).rule).toBe('no-history');
    expect(routeOptimize({ stage: 'oom', job: shape() }, S).resources?.memoryBytes).toBe(4 * GiB);
    expect(routeOptimize({ stage: 'running', job: shape() }, S).rule).toBe('insufficient-data');
    expect(() => routeOptimize({ stage: 'warp' as never, job: shape() }, S)).toThrow(UnknownStageError);
    expect(() => routeOptimize({ stage: 'warp' as never, job: shape() }, S)).toThrow('initial, oom, running');
  });

  it('takes settings from the configuration and reports bad ones', () => {
    expect(optimizerSettings({ optimizer: { oomFactor: 3 } }).settings.oomFactor).toBe(3);
    // A bad field falls back alone; the valid one beside it is kept.
    const bad = optimizerSettings({ optimizer: { oomFactor: 3, efficiencyThreshold: 2 } });
    expect(bad.settings).toEqual({ ...S, oomFactor: 3 });
    expect(bad.warnings).toEqual(['configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2); default used']);
  });
});
