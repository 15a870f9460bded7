import { describe, expect, it } from 'vitest';
import { decideRoundOpening, type LatestRound, type RoundOpening, type RoundTrigger } from './roundOpening.ts';

const spec = { minNodes: 2, initialNodes: 4 };
const round = (n: number, status: 'open' | 'closed' | 'failed', maxNodes = 4): LatestRound => ({ round: n, status, maxNodes });
const opens = (n: number, maxNodes: number, cause: string | RegExp) => ({ action: 'open', round: n, minNodes: 2, maxNodes, cause });

const join = (memberOfLatest = false): RoundTrigger => ({ kind: 'join', node: 3, incarnation: 1, memberOfLatest });
const failure: RoundTrigger = { kind: 'process_failed', node: 0, localRank: 1, signal: 'SIGKILL', exitCode: null };
const hang = (r: number): RoundTrigger => ({ kind: 'hang', round: r, idleMs: 61_400, hangEventId: 9 });
const scale = (n: number): RoundTrigger => ({ kind: 'workflow', targetNodes: n, cause: 'scale to 6' });

const table: [string, LatestRound | undefined, RoundTrigger, RoundOpening | ReturnType<typeof opens>][] = [
  ['the job start opens round 1', undefined, { kind: 'job_start', targetNodes: 3 }, opens(1, 3, 'job start')],
  ['a repeated job start opens nothing', round(1, 'open'), { kind: 'job_start', targetNodes: 3 }, { action: 'none', round: 1 }],
  ['a join finds the open round', round(2, 'open'), join(), { action: 'none', round: 2 }],
  ['a join after a closed round opens the next, same size', round(2, 'closed', 3), join(), opens(3, 3, 'node 3 incarnation 1 joined')],
  ['a member of the closed round asking again joins nothing', round(2, 'closed'), join(true), { action: 'none', round: 2 }],
  ['a join after a failed round opens the next', round(2, 'failed'), join(true), opens(3, 4, 'node 3 incarnation 1 joined')],
  ['a first join with no round opens round 1 at the initial size', undefined, join(), opens(1, 4, 'node 3 incarnation 1 joined')],
  ['a process failure after a closed round opens the next', round(1, 'closed'), failure, opens(2, 4, 'process failed on node 0 (local rank 1, killed by SIGKILL)')],
  ['a process failure during a rendezvous is part of it', round(2, 'open'), failure, { action: 'none', round: 2 }],
  ['an exit code is named when no signal', round(1, 'closed'), { ...failure, signal: null, exitCode: 3, localRank: undefined } as RoundTrigger, opens(2, 4, 'process failed on node 0 (local rank ?, exit code 3)')],
  ['a hang of the latest closed round restarts it once', round(4, 'closed'), hang(4), opens(5, 4, 'hang: no training progress for 61 s (hang_suspected #9)')],
  ['a hang of an earlier round opens nothing', round(5, 'closed'), hang(4), { action: 'none', round: 5 }],
  ['a hang while a round is open opens nothing', round(4, 'open'), hang(4), { action: 'none', round: 4 }],
  ['the workflow resizes the open round', round(3, 'open'), scale(6), { action: 'resize', round: 3, maxNodes: 6 }],
  ['the workflow opens the next round at its size', round(3, 'closed'), scale(6), opens(4, 6, 'scale to 6')],
];

describe('decideRoundOpening', () => {
  it.each(table)('%s', (_name, latest, trigger, expected) => {
    expect(decideRoundOpening(latest, trigger, spec)).toEqual(expected);
  });
});
