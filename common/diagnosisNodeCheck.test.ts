// Node-check pairing and verdicts, and straggler detection, as tables.
import { describe, expect, it } from 'vitest';
import { detectStragglers, median, nodeCheckVerdict, pairRound1, pairRound2, type CheckResult } from './diagnosisNodeCheck.ts';

const r = (node: number, elapsedMs: number | null): CheckResult => ({ node, elapsedMs });

describe('node check', () => {
  it('pairs neighbours in round 1, the odd node out with the first', () => {
    expect(pairRound1([3, 0, 1, 2])).toEqual([[0, 1], [2, 3]]);
    expect(pairRound1([0, 1, 2, 3, 4])).toEqual([[0, 1], [2, 3], [4, 0]]);
  });

  it('pairs the slowest with the fastest in round 2, failed nodes first', () => {
    expect(pairRound2([r(0, 100), r(1, null), r(2, 300), r(3, 120)])).toEqual([[1, 0], [2, 3]]);
  });

  it('calls a node faulty only when it failed in both rounds', () => {
    // Round 1: pair (0,1) failed together; round 2 pairs each with a healthy node and only 1 fails again.
    const v = nodeCheckVerdict([r(0, null), r(1, null), r(2, 100), r(3, 110)], [r(1, null), r(2, 105), r(0, 98), r(3, 100)]);
    expect(v.faulty).toEqual([1]);
    expect(v.stragglers).toEqual([]);
  });

  it('calls a node slower than twice the median a straggler', () => {
    const v = nodeCheckVerdict([r(0, 100), r(1, 100), r(2, 110), r(3, 450)], [r(3, 400), r(0, 95), r(1, 105), r(2, 100)]);
    expect(v).toEqual({ faulty: [], stragglers: [3], medianMs: 100 });
  });
});

describe('detectStragglers', () => {
  it('flags sustained outliers only', () => {
    const steady = [100, 110, 90, 100, 105];
    expect(detectStragglers([{ node: 0, ms: steady }, { node: 1, ms: steady }, { node: 2, ms: [300, 320, 310, 290, 305] }])).toEqual([2]);
    expect(detectStragglers([{ node: 0, ms: steady }, { node: 1, ms: [100, 900, 100, 100, 100] }])).toEqual([]);
    expect(detectStragglers([{ node: 0, ms: steady }, { node: 1, ms: [900, 900] }]), 'too few samples').toEqual([]);
  });

  it('takes the median', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([])).toBeNull();
  });
});
