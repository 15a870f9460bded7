import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideRound } from './rendezvous.ts';
import { roundDecisionDue, type RoundRow, type RoundTimeouts } from './roundDue.ts';

const T0 = 1_000_000;
const rules: RoundTimeouts = { unit: 1, lastCallTimeoutMs: 10_000, joinTimeoutMs: 300_000 };

/** A round opened at T0, nodes min 2 / max 4, last member joined at T0 + 1 s. */
function row(overrides: Partial<RoundRow> = {}): RoundRow {
  return { openedAt: T0, lastJoinAt: T0 + 1000, memberCount: 0, minNodes: 2, maxNodes: 4, ...overrides };
}

describe('roundDecisionDue', () => {
  const table: { name: string; round: RoundRow; rules?: Partial<RoundTimeouts>; now: number; due: boolean }[] = [
    { name: 'a join that fills the round: close now', round: row({ memberCount: 4 }), now: T0 + 1000, due: true },
    { name: 'min joined, last call running: wait', round: row({ memberCount: 2 }), now: T0 + 10_999, due: false },
    { name: 'min joined, last call over: close', round: row({ memberCount: 2 }), now: T0 + 11_000, due: true },
    { name: 'below min after the last call: wait for the join deadline', round: row({ memberCount: 1 }), now: T0 + 60_000, due: false },
    { name: 'below min at the join deadline: fail', round: row({ memberCount: 1 }), now: T0 + 300_000, due: true },
    { name: 'nobody joined at the join deadline: fail', round: row({ lastJoinAt: null }), now: T0 + 300_000, due: true },
    { name: 'nobody joined yet: wait', round: row({ lastJoinAt: null }), now: T0 + 299_999, due: false },
    { name: 'formable round past the join deadline still waits for its last call', round: row({ memberCount: 3, lastJoinAt: T0 + 299_000 }), now: T0 + 300_000, due: false },
    { name: 'members beyond max (max lowered by a scale): close', round: row({ memberCount: 6 }), now: T0 + 1000, due: true },
    { name: 'full but the unit leaves fewer than min: wait', round: row({ memberCount: 3, minNodes: 3, maxNodes: 3 }), rules: { unit: 2 }, now: T0 + 1000, due: false },
    { name: 'full but the unit leaves fewer than min, at the join deadline: fail', round: row({ memberCount: 3, minNodes: 3, maxNodes: 3 }), rules: { unit: 2 }, now: T0 + 300_000, due: true },
    { name: 'unit of 2 with 3 of max 4 after the last call: close with 2', round: row({ memberCount: 3 }), rules: { unit: 2 }, now: T0 + 11_000, due: true },
  ];
  it.each(table)('$name', ({ round, rules: overrides, now, due }) => {
    expect(roundDecisionDue(round, { ...rules, ...overrides }, now)).toBe(due);
  });

  it('is due exactly when the round policy would not wait, for any round', () => {
    const arbitrary = fc.record({
      members: fc.integer({ min: 0, max: 12 }),
      minNodes: fc.integer({ min: 0, max: 8 }),
      maxNodes: fc.integer({ min: 1, max: 10 }),
      unit: fc.integer({ min: 1, max: 4 }),
      lastJoinAt: fc.option(fc.integer({ min: 0, max: 400_000 }), { nil: null }),
      lastCallTimeoutMs: fc.integer({ min: 0, max: 20_000 }),
      joinTimeoutMs: fc.integer({ min: 0, max: 400_000 }),
      now: fc.integer({ min: 0, max: 800_000 }),
    });
    fc.assert(
      fc.property(arbitrary, (r) => {
        const members = Array.from({ length: r.members }, (_, node) => ({ node, incarnation: 0, host: `h${node}`, freePort: 1 + node }));
        const common = { openedAt: 0, lastJoinAt: r.lastJoinAt, minNodes: r.minNodes, maxNodes: r.maxNodes };
        const timeouts = { unit: r.unit, lastCallTimeoutMs: r.lastCallTimeoutMs, joinTimeoutMs: r.joinTimeoutMs };
        const decision = decideRound({ round: 1, now: r.now, members, ...common, ...timeouts });
        expect(roundDecisionDue({ ...common, memberCount: r.members }, timeouts, r.now)).toBe(decision.action !== 'wait');
      }),
      { numRuns: 2000 },
    );
  });
});
