// The progress and ETA arithmetic behind `rover status`, `watch`, `submit --wait` and the job
// workflow's current details.
import { describe, expect, it } from 'vitest';
import { elapsedEtaSeconds, estimateProgress, formatEta, stepRate, stepTargetProgress } from './trainingProgress.ts';

const at = (createdAt: number, value: number) => ({ createdAt, value });

describe('stepRate', () => {
  it('is the slope of the step samples in steps per second', () => {
    expect(stepRate([at(0, 100), at(2000, 110), at(4000, 120)])).toBe(5);
  });

  it('counts only the samples after a restart took the step back', () => {
    expect(stepRate([at(0, 100), at(1000, 200), at(2000, 40), at(4000, 60)])).toBe(10);
  });

  it('is unknown with fewer than two samples or no time between them', () => {
    expect(stepRate([])).toBeNull();
    expect(stepRate([at(1000, 5)])).toBeNull();
    expect(stepRate([at(1000, 5), at(1000, 6)])).toBeNull();
  });

  it('is unknown right after a restart, until a second sample arrives', () => {
    expect(stepRate([at(0, 100), at(1000, 200), at(2000, 40)])).toBeNull();
  });
});

describe('elapsedEtaSeconds', () => {
  it('extrapolates the pace so far: a quarter done in 60 s leaves 180 s', () => {
    expect(elapsedEtaSeconds(0.25, 60_000)).toBe(180);
  });

  it('is unknown before any progress, without a dataset, and once done', () => {
    expect(elapsedEtaSeconds(0, 60_000)).toBeNull();
    expect(elapsedEtaSeconds(null, 60_000)).toBeNull();
    expect(elapsedEtaSeconds(1, 60_000)).toBeNull();
  });
});

describe('stepTargetProgress', () => {
  it('is step / target done, and the steps left at the step rate: 1200 of 5000 at 10 steps/s leaves 380 s', () => {
    expect(stepTargetProgress(1200, 10, 5000)).toEqual({ fraction: 0.24, etaSeconds: 380 });
  });

  it('has a fraction but no ETA before the rate is known, or while the step stalls', () => {
    expect(stepTargetProgress(1200, null, 5000)).toEqual({ fraction: 0.24, etaSeconds: null });
    expect(stepTargetProgress(1200, 0, 5000)).toEqual({ fraction: 0.24, etaSeconds: null });
  });

  it('is unknown before any step was reported', () => {
    expect(stepTargetProgress(null, null, 5000)).toEqual({ fraction: null, etaSeconds: null });
  });

  it('stops at 100% with no ETA once the step reaches or passes the target', () => {
    expect(stepTargetProgress(5000, 10, 5000)).toEqual({ fraction: 1, etaSeconds: null });
    expect(stepTargetProgress(5300, 10, 5000)).toEqual({ fraction: 1, etaSeconds: null });
  });

  it('after a restart back to the checkpoint, counts from the step the job resumed at, at the pace since', () => {
    // Was at 3000, resumed from the checkpoint at 2000; stepping 20/s since the restart.
    expect(stepTargetProgress(2000, 20, 5000)).toEqual({ fraction: 0.4, etaSeconds: 150 });
  });
});

describe('estimateProgress', () => {
  const base = { step: 1200, stepsPerSecond: 10, elapsedMs: 60_000 };

  it('measures toward the step target when the spec has one, even with a dataset', () => {
    expect(estimateProgress({ ...base, maxSteps: 5000, shardFraction: 0.9 })).toEqual({ fraction: 0.24, etaSeconds: 380, basis: 'steps' });
  });

  it('falls back to the dataset shards, at the pace since the job started, without a step target', () => {
    expect(estimateProgress({ ...base, maxSteps: null, shardFraction: 0.25 })).toEqual({ fraction: 0.25, etaSeconds: 180, basis: 'dataset' });
  });

  it('is unknown with neither', () => {
    expect(estimateProgress({ ...base, shardFraction: null })).toEqual({ fraction: null, etaSeconds: null, basis: null });
  });
});

describe('formatEta', () => {
  it('reads like a person would say it', () => {
    expect([42, 185, 7620, 273_600].map(formatEta)).toEqual(['42s', '3m05s', '2h07m', '3d04h']);
  });
});
