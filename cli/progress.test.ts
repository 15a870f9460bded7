// The step rate and ETA `rover status`, `watch` and `submit --wait` show.
import { describe, expect, it } from 'vitest';
import { formatDuration, formatProgressLine } from './format.ts';
import { etaSeconds, stepRate } from './progress.ts';

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
});

describe('etaSeconds', () => {
  it('extrapolates the pace so far: a quarter done in 60 s leaves 180 s', () => {
    expect(etaSeconds(0.25, 60_000)).toBe(180);
  });

  it('is unknown before any progress, without a dataset, and once done', () => {
    expect(etaSeconds(0, 60_000)).toBeNull();
    expect(etaSeconds(null, 60_000)).toBeNull();
    expect(etaSeconds(1, 60_000)).toBeNull();
  });
});

describe('formatProgressLine', () => {
  it('shows phase, world size, round, step, rate, progress and ETA', () => {
    const line = formatProgressLine({ phase: 'RUNNING', worldSize: 8, round: 1 }, { step: 1200, stepsPerSecond: 12.345, fraction: 0.4523, etaSeconds: 185 });
    expect(line).toBe('RUNNING · world 8 · round 1 · step 1200 · 12.3 steps/s · 45.2% · ETA 3m05s');
  });

  it('leaves out what is not known yet', () => {
    expect(formatProgressLine({ phase: 'RENDEZVOUS', worldSize: 0, round: 0 }, { step: null, stepsPerSecond: null, fraction: null, etaSeconds: null })).toBe(
      'RENDEZVOUS · world 0 · round 0',
    );
  });
});

describe('formatDuration', () => {
  it('reads like a person would say it', () => {
    expect([42, 185, 7620, 273_600].map(formatDuration)).toEqual(['42s', '3m05s', '2h07m', '3d04h']);
  });
});
