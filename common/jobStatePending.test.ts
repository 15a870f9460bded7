// JobState's deadlines, as tables: the rendezvous join deadline and spec.faultTolerance.
// pendingTimeout. The workflow arms one durable timer at nextDeadline(), asks the store (join)
// or the backend (pending) when it fires, and carries out what the state returns.
import { describe, expect, it } from 'vitest';
import type { EventDataInput, JobEvent, NodeEventKind } from './events.ts';
import type { RoundDeadlineCheck } from './jobActivities.ts';
import { initialJobState, JobState, type JobLimits } from './jobState.ts';
import { roundClosedData, testEvent } from './eventFixtures.ts';

const JOIN = 300_000;
const PENDING = 900_000;
const UNSCHEDULABLE = 'pod not scheduled (PodScheduled False): Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu';

const limits = (o: Partial<JobLimits> = {}): JobLimits => ({
  minNodes: 1,
  maxNodes: 4,
  unit: 1,
  nprocPerNode: 1,
  maxNodeRelaunches: 2,
  joinTimeoutMs: JOIN,
  pendingTimeoutMs: PENDING,
  ...o,
});

let nextId = 0;
const event = <K extends NodeEventKind>(kind: K, at: number, data: EventDataInput<K>, node: number | null = null, incarnation: number | null = null): JobEvent => testEvent({
  id: ++nextId,
  kind,
  nodeId: node,
  incarnation,
  data,
  at,
});

/** A job of `nodes` nodes launched at t=0, round 1 opened at t=0 and nobody registered yet. */
function launched(nodes: number, l: Partial<JobLimits> = {}): JobState {
  const state = new JobState(initialJobState(nodes), limits(l));
  state.markLaunched(state.activeNodes().map((n) => ({ id: n.id, incarnation: 0, pid: null })), 0);
  state.applyEvents([event('round_opened', 0, { round: 1, cause: 'job start' })]);
  return state;
}

/** Node `id` registered and joined; round `round` closed with `ids`. */
function closed(state: JobState, round: number, ids: number[], at: number): void {
  state.applyEvents([
    ...ids.map((id) => event('node_registered', at, { pid: 100 + id, host: `host-${id}` }, id, 0)),
    event('round_closed', at, roundClosedData(round, ids)),
  ]);
}

describe('the rendezvous join deadline', () => {
  it('is due joinTimeout after the round opened, with no agent alive', () => {
    const state = launched(2);
    expect(state.nextDeadline()).toBe(JOIN);
    expect(state.roundDue(JOIN - 1)).toBeUndefined();
    expect(state.roundDue(JOIN)).toBe(1);
  });

  it.each<{ name: string; check: RoundDeadlineCheck; phase: string; next: number | undefined }>([
    {
      name: 'the store failed the round: the job fails with its reason',
      check: { status: 'failed', reason: `rendezvous round 1: only 0 of min 2 nodes joined within 5m; 2 nodes still pending: nodes 0, 1 (${UNSCHEDULABLE})` },
      phase: 'FAILED',
      next: undefined,
    },
    { name: 'the round was settled already: its event is on its way, no more checks', check: { status: 'settled' }, phase: 'RENDEZVOUS', next: PENDING },
    { name: "the store's clock says not yet: check again then", check: { status: 'open', recheckAt: JOIN + 5000 }, phase: 'RENDEZVOUS', next: JOIN + 5000 },
    { name: 'a recheck in the past waits at least a second (no busy loop on clock skew)', check: { status: 'open', recheckAt: JOIN - 10 }, phase: 'RENDEZVOUS', next: JOIN + 1000 },
  ])('$name', ({ check, phase, next }) => {
    const state = launched(2);
    state.roundChecked(1, check, JOIN);
    expect(state.data.phase).toBe(phase);
    if (check.status === 'failed') expect(state.data.reason).toBe(check.reason);
    expect(state.nextDeadline()).toBe(next);
  });

  it('is forgotten when the round closes, and set again by the next round', () => {
    const state = launched(2);
    closed(state, 1, [0, 1], 10_000);
    expect(state.data.openRound).toBeUndefined();
    expect(state.nextDeadline()).toBeUndefined();
    state.applyEvents([event('round_opened', 50_000, { round: 2, cause: 'relaunch node 1 as incarnation 1' })]);
    expect(state.nextDeadline()).toBe(50_000 + JOIN);
  });

  it('ignores the answer for a round that is no longer the open one', () => {
    const state = launched(2);
    state.applyEvents([event('round_opened', 20_000, { round: 2, cause: 'relaunch node 1 as incarnation 1' })]);
    state.roundChecked(1, { status: 'settled' }, JOIN);
    expect(state.data.openRound).toEqual({ round: 2, checkAt: 20_000 + JOIN });
  });

  it('is not timed without a joinTimeout (a history from before the timers)', () => {
    const state = launched(2, { joinTimeoutMs: undefined, pendingTimeoutMs: undefined });
    expect(state.nextDeadline()).toBeUndefined();
    expect(state.roundDue(Number.MAX_SAFE_INTEGER)).toBeUndefined();
  });

  it('survives continue-as-new', () => {
    const state = launched(2);
    const carried = new JobState(JSON.parse(JSON.stringify(state.data)), limits());
    expect(carried.nextDeadline()).toBe(JOIN);
    expect(carried.pendingDue(PENDING)).toEqual([{ id: 0, incarnation: 0 }, { id: 1, incarnation: 0 }]);
  });
});

describe('spec.faultTolerance.pendingTimeout', () => {
  /** 3 nodes, min `min`: nodes 0 and 1 trained in round 1 from t=10s; node 2 never came up. */
  function oneStuck(o: { min?: number; maxNodeRelaunches?: number } = {}): JobState {
    const state = launched(3, { minNodes: o.min ?? 1, ...(o.maxNodeRelaunches !== undefined && { maxNodeRelaunches: o.maxNodeRelaunches }) });
    closed(state, 1, [0, 1], 10_000);
    return state;
  }
  const stuck = (reason: string | null = UNSCHEDULABLE) => [{ id: 2, incarnation: 0, reason }];

  it('times only launched nodes that have not registered', () => {
    const state = oneStuck();
    expect(state.nextDeadline()).toBe(PENDING);
    expect(state.pendingDue(PENDING - 1)).toEqual([]);
    expect(state.pendingDue(PENDING)).toEqual([{ id: 2, incarnation: 0 }]);
  });

  it.each([
    {
      name: 'budget left: relaunched as incarnation 1, counted, training goes on undisturbed',
      o: { maxNodeRelaunches: 2 },
      actions: [{ type: 'remove', nodes: [{ id: 2, incarnation: 0 }] }, { type: 'launch', nodes: [{ id: 2, incarnation: 1 }] }],
      phase: 'RUNNING',
      target: 3,
      relaunches: 1,
      said: /node 2 incarnation 0 still pending after 15m \(spec\.faultTolerance\.pendingTimeout\): pod not scheduled .*Unschedulable: 0\/3 nodes are available.*: relaunched as incarnation 1$/,
    },
    {
      name: 'budget spent, min still holds: the job goes on without it',
      o: { maxNodeRelaunches: 0, min: 2 },
      actions: [{ type: 'remove', nodes: [{ id: 2, incarnation: 0 }] }],
      phase: 'RUNNING',
      target: 2,
      relaunches: 0,
      said: /still pending after 15m .*Unschedulable.*; node relaunch budget exhausted \(0\/0\): continuing with 2 nodes$/,
    },
    {
      name: 'budget spent, below min: the job fails, saying why the node is pending',
      o: { maxNodeRelaunches: 0, min: 3 },
      actions: [{ type: 'remove', nodes: [{ id: 2, incarnation: 0 }] }],
      phase: 'FAILED',
      target: 3,
      relaunches: 0,
      said: /^node 2 incarnation 0 still pending after 15m \(spec\.faultTolerance\.pendingTimeout\): pod not scheduled \(PodScheduled False\): Unschedulable: 0\/3 nodes are available: 3 Insufficient nvidia\.com\/gpu; node relaunch budget exhausted \(0\/0\) and 2 nodes left, below spec\.nodes\.min 3$/,
    },
  ])('$name', ({ o, actions, phase, target, relaunches, said }) => {
    const state = oneStuck(o);
    expect(state.pendingTimedOut(stuck(), PENDING)).toEqual(actions);
    expect(state.data.phase).toBe(phase);
    expect(state.data.targetNodes).toBe(target);
    expect(state.data.nodeRelaunches).toBe(relaunches);
    expect(phase === 'FAILED' ? state.data.reason : state.data.warnings.at(-1)).toMatch(said);
  });

  it('times the relaunched incarnation from its own launch', () => {
    const state = oneStuck();
    state.pendingTimedOut(stuck(), PENDING);
    expect(state.nextDeadline()).toBeUndefined();
    state.markLaunched([{ id: 2, incarnation: 1, pid: null }], PENDING + 2000);
    expect(state.nextDeadline()).toBe(2 * PENDING + 2000);
  });

  it('stops timing a node the backend no longer reports pending (it registered meanwhile)', () => {
    const state = oneStuck();
    expect(state.pendingTimedOut([], PENDING)).toEqual([]);
    expect(state.node(2)).toMatchObject({ status: 'launching', incarnation: 0 });
    expect(state.nextDeadline()).toBeUndefined();
  });

  it('says so when the backend gives no reason', () => {
    const state = oneStuck({ maxNodeRelaunches: 0, min: 3 });
    state.pendingTimedOut(stuck(null), PENDING);
    expect(state.data.reason).toMatch(/still pending after 15m \(spec\.faultTolerance\.pendingTimeout\): the backend gives no reason;/);
  });

  it('gives up on pending nodes one by one until min no longer holds', () => {
    const state = launched(3, { minNodes: 2, maxNodeRelaunches: 0, joinTimeoutMs: undefined });
    const reports = [0, 1, 2].map((id) => ({ id, incarnation: 0, reason: UNSCHEDULABLE }));
    expect(state.pendingTimedOut(reports, PENDING).map((a) => a.type)).toEqual(['remove', 'remove']);
    expect(state.data.phase).toBe('FAILED');
    expect(state.data.reason).toMatch(/^node 1 incarnation 0 still pending .*1 nodes left, below spec\.nodes\.min 2$/);
  });

  it('has no deadline for a registered node, nor after the job ended', () => {
    const state = oneStuck();
    state.applyEvents([event('node_registered', 20_000, { pid: 7, host: 'host-2' }, 2, 0)]);
    expect(state.nextDeadline()).toBeUndefined();
    const ended = launched(2);
    ended.finish('STOPPED', 'test');
    expect(ended.nextDeadline()).toBeUndefined();
    expect(ended.pendingDue(Number.MAX_SAFE_INTEGER)).toEqual([]);
  });
});
