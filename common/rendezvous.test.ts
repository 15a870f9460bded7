import { describe, expect, it } from 'vitest';
import { decideRound, formatDuration, type RoundInput, type RoundMember } from './rendezvous.ts';

const T0 = 1_000_000;

function member(node: number, overrides: Partial<RoundMember> = {}): RoundMember {
  return { node, incarnation: 0, host: `10.0.0.${node + 1}`, freePort: 29500 + node, ...overrides };
}

/** A round opened at T0 with nodes min 2 / max 4 / unit 1, last call 10 s, join timeout 5 min. */
function round(overrides: Partial<RoundInput> = {}): RoundInput {
  return {
    round: 1,
    openedAt: T0,
    lastJoinAt: T0 + 1000,
    now: T0 + 1000,
    members: [],
    minNodes: 2,
    maxNodes: 4,
    unit: 1,
    lastCallTimeoutMs: 10_000,
    joinTimeoutMs: 300_000,
    ...overrides,
  };
}

const nodes = (...ids: number[]) => ids.map((id) => member(id));

describe('decideRound', () => {
  const table: { name: string; input: RoundInput; expected: ReturnType<typeof decideRound> }[] = [
    {
      name: 'closes as soon as max nodes joined',
      input: round({ members: nodes(0, 1, 2, 3) }),
      expected: {
        action: 'close',
        ranked: [0, 1, 2, 3].map((n) => ({ node: n, incarnation: 0, groupRank: n })),
        excluded: [],
        masterAddr: '10.0.0.1',
        masterPort: 29500,
      },
    },
    {
      name: 'waits below min until the join deadline',
      input: round({ members: nodes(0), now: T0 + 60_000 }),
      expected: { action: 'wait', recheckAt: T0 + 300_000 },
    },
    {
      name: 'closes at min once the last call passed',
      input: round({ members: nodes(0, 1), lastJoinAt: T0 + 1000, now: T0 + 11_000 }),
      expected: {
        action: 'close',
        ranked: [
          { node: 0, incarnation: 0, groupRank: 0 },
          { node: 1, incarnation: 0, groupRank: 1 },
        ],
        excluded: [],
        masterAddr: '10.0.0.1',
        masterPort: 29500,
      },
    },
    {
      name: 'waits at min while the last call has not passed',
      input: round({ members: nodes(0, 1, 2), lastJoinAt: T0 + 5000, now: T0 + 14_999 }),
      expected: { action: 'wait', recheckAt: T0 + 15_000 },
    },
    {
      name: 'cuts the world down to a multiple of unit, excluding the highest node ids',
      input: round({ members: nodes(4, 0, 2, 1, 3), maxNodes: 8, unit: 2, now: T0 + 20_000 }),
      expected: {
        action: 'close',
        ranked: [0, 1, 2, 3].map((n) => ({ node: n, incarnation: 0, groupRank: n })),
        excluded: [4],
        masterAddr: '10.0.0.1',
        masterPort: 29500,
      },
    },
    {
      name: 'cuts a full round beyond max and to a multiple of unit',
      input: round({ members: nodes(0, 1, 2, 3, 4), maxNodes: 5, unit: 2 }),
      expected: {
        action: 'close',
        ranked: [0, 1, 2, 3].map((n) => ({ node: n, incarnation: 0, groupRank: n })),
        excluded: [4],
        masterAddr: '10.0.0.1',
        masterPort: 29500,
      },
    },
    {
      name: 'keeps waiting when the unit cut would drop below min',
      input: round({ members: nodes(0, 1, 2), minNodes: 3, maxNodes: 8, unit: 2, now: T0 + 60_000 }),
      expected: { action: 'wait', recheckAt: T0 + 300_000 },
    },
    {
      name: 'fails when fewer than min joined within the join timeout',
      input: round({ round: 7, members: nodes(0), now: T0 + 300_000 }),
      expected: { action: 'fail', reason: 'rendezvous round 7: only 1 of min 2 nodes joined within 5m' },
    },
    {
      name: 'fails at the join timeout when the unit cut stays below min',
      input: round({ round: 2, members: nodes(0, 1, 2), minNodes: 3, maxNodes: 8, unit: 2, now: T0 + 300_000 }),
      expected: {
        action: 'fail',
        reason: 'rendezvous round 2: 3 nodes joined within 5m, but a multiple of unit 2 gives 2, below min 3',
      },
    },
    {
      name: 'fails with nobody joined after the join timeout',
      input: round({ members: [], lastJoinAt: null, now: T0 + 400_000, joinTimeoutMs: 90_000 }),
      expected: { action: 'fail', reason: 'rendezvous round 1: only 0 of min 2 nodes joined within 1m30s' },
    },
    {
      name: 'does not fail a formable round past the join timeout; it closes at the last call',
      input: round({ members: nodes(0, 1), lastJoinAt: T0 + 299_000, now: T0 + 301_000 }),
      expected: { action: 'wait', recheckAt: T0 + 309_000 },
    },
  ];

  it.each(table)('$name', ({ input, expected }) => {
    expect(decideRound(input)).toEqual(expected);
  });

  it('ranks by node id whatever the join order', () => {
    const orders = [
      [2, 0, 3, 1],
      [3, 2, 1, 0],
      [0, 1, 2, 3],
    ];
    const results = orders.map((order) => decideRound(round({ members: nodes(...order) })));
    for (const result of results) {
      expect(result).toMatchObject({
        action: 'close',
        ranked: [0, 1, 2, 3].map((n) => ({ node: n, groupRank: n })),
      });
    }
  });

  it('takes MASTER_ADDR and MASTER_PORT from the rank 0 member', () => {
    const members = [
      member(5, { host: 'node-5.svc', freePort: 40005 }),
      member(3, { host: 'node-3.svc', freePort: 40003 }),
    ];
    const result = decideRound(round({ members, minNodes: 1, maxNodes: 2 }));
    expect(result).toMatchObject({ action: 'close', masterAddr: 'node-3.svc', masterPort: 40003 });
  });

  it('counts a node that joined twice once, with its newest incarnation', () => {
    const members = [member(0), member(1), member(1, { incarnation: 2, host: 'new-1' })];
    const result = decideRound(round({ members, maxNodes: 2 }));
    expect(result).toMatchObject({
      action: 'close',
      ranked: [
        { node: 0, incarnation: 0, groupRank: 0 },
        { node: 1, incarnation: 2, groupRank: 1 },
      ],
    });
  });
});

describe('formatDuration', () => {
  it.each([
    [200, '200ms'],
    [1500, '1.5s'],
    [30_000, '30s'],
    [90_000, '1m30s'],
    [300_000, '5m'],
  ])('%d ms reads %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
