import { describe, expect, it } from 'vitest';
import { planEpoch, shardCount } from './shardPlan.ts';

const base = { size: 1000, shardSize: 64, shuffle: false, seed: 0 };
const covered = (ranges: { startIndex: number; endIndex: number }[]) =>
  ranges.flatMap((r) => Array.from({ length: r.endIndex - r.startIndex }, (_, i) => r.startIndex + i)).sort((a, b) => a - b);

describe('planEpoch', () => {
  it('splits the dataset into ranges of shardSize, the last one shorter', () => {
    const ranges = planEpoch(base, 0);
    expect(shardCount(base)).toBe(16);
    expect(ranges[0]).toEqual({ startIndex: 0, endIndex: 64 });
    expect(ranges.at(-1)).toEqual({ startIndex: 960, endIndex: 1000 });
    expect(covered(ranges)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('shuffles deterministically by seed and epoch, covering every sample once', () => {
    const spec = { ...base, shuffle: true, seed: 7 };
    const a = planEpoch(spec, 0);
    expect(planEpoch(spec, 0)).toEqual(a);
    expect(planEpoch(spec, 1)).not.toEqual(a);
    expect(planEpoch({ ...spec, seed: 8 }, 0)).not.toEqual(a);
    expect(a).not.toEqual(planEpoch(base, 0));
    expect(covered(a)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });
});
