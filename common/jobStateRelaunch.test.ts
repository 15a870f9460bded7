// Every way JobState relaunches a node, as one table: the actions in order, whether the budget
// paid, the phase, and the warning. The workflow issues these actions as commands, so recorded
// histories replay only while they stay exactly so.
import { describe, expect, it } from 'vitest';
import type { EventDataInput, JobEvent, NodeEventKind } from './events.ts';
import { initialJobState, JobState, type JobAction, type JobLimits } from './jobState.ts';
import { roundClosedData, testEvent } from './eventFixtures.ts';

let nextId = 0;
const event = <K extends NodeEventKind>(kind: K, node: number | null, data: EventDataInput<K>): JobEvent => testEvent({ id: ++nextId, kind, nodeId: node, incarnation: node === null ? null : 0, data, at: 0 });

/** Two nodes training in round 1; node relaunch budget 2, one of them spent when `spent`. */
function training(l: Partial<JobLimits> = {}): JobState {
  const state = new JobState(initialJobState(2), { minNodes: 1, maxNodes: 4, unit: 1, nprocPerNode: 1, maxNodeRelaunches: 2, ...l });
  state.markLaunched(state.activeNodes().map((n) => ({ id: n.id, incarnation: 0, pid: null })));
  state.applyEvents([
    event('round_opened', null, { round: 1, cause: 'job start' }),
    event('round_closed', null, roundClosedData(1, [0, 1])),
  ]);
  return state;
}

const remove: JobAction = { type: 'remove', nodes: [{ id: 1, incarnation: 0 }] };
const round = (cause: string): JobAction => ({ type: 'openRound', cause });
const launch = (avoid?: boolean): JobAction => ({ type: 'launch', nodes: [{ id: 1, incarnation: 1, ...(avoid && { avoidHostOfIncarnation: 0 }) }] });

describe('JobState relaunch', () => {
  it.each([
    {
      name: 'a failed node: counted, its peers restart into a new round',
      kind: 'node_failed' as const,
      data: { exitCode: 1 },
      actions: [remove, round('relaunch node 1 as incarnation 1'), launch()],
      relaunches: 1,
      warning: undefined,
    },
    {
      name: 'a node lost to the platform: not counted, and said so',
      kind: 'node_lost' as const,
      data: { platformCause: 'pod evicted', reason: 'gone' },
      actions: [remove, round('relaunch node 1 as incarnation 1'), launch()],
      relaunches: 0,
      warning: 'node 1 incarnation 0 lost: gone: relaunched as incarnation 1 (pod evicted; not counted against maxNodeRelaunches)',
    },
    {
      name: 'an OOM-killed node: the OOM plan is asked for between the round and the launch',
      kind: 'node_failed' as const,
      data: { exitCode: 137, oomKilled: true },
      actions: [
        remove,
        round('relaunch node 1 as incarnation 1'),
        { type: 'oomPlan', node: { id: 1, incarnation: 1 }, failedIncarnation: 0, exitCode: 137, reason: 'node 1 incarnation 0 failed with exit code 137' },
        launch(),
      ],
      relaunches: 1,
      warning: undefined,
    },
    {
      name: 'a node faulty in the node check: not counted, kept off its host',
      kind: 'node_check' as const,
      data: { verdict: 'faulty', exclude: false, bestSeconds: 3, medianSeconds: 0.05 },
      actions: [remove, round('relaunch node 1 as incarnation 1 after its node check failed'), launch(true)],
      relaunches: 0,
      warning: 'node 1 incarnation 0 failed the node check in both rounds: relaunched as incarnation 1 (the pre-flight check; not counted against maxNodeRelaunches)',
    },
    {
      name: 'a straggler while training: counted, kept off its host',
      kind: 'straggler_detected' as const,
      data: { relaunch: true, seconds: 2, medianSeconds: 1 },
      actions: [remove, round('relaunch straggler node 1 as incarnation 1'), launch(true)],
      relaunches: 1,
      warning: 'node 1 incarnation 0 is a straggler: step compute 2.00 s (job median 1.00 s): relaunched as incarnation 1 (spec.diagnosis.relaunchStragglers)',
    },
  ])('$name', ({ kind, data, actions, relaunches, warning }) => {
    const state = training();
    const warnings = state.data.warnings.length;
    expect(state.applyEvents([event(kind, 1, data)])).toEqual(actions);
    expect([state.data.nodeRelaunches, state.data.phase, state.node(1)?.incarnation, state.node(1)?.status]).toEqual([relaunches, 'RESCALING', 1, 'pending']);
    expect(state.data.warnings.slice(warnings)).toEqual(warning === undefined ? [] : [warning]);
  });

  it('a node pending past its timeout: counted, joins without a round of its own, the phase kept', () => {
    const state = new JobState(initialJobState(2), { minNodes: 1, maxNodes: 4, unit: 1, nprocPerNode: 1, maxNodeRelaunches: 2, pendingTimeoutMs: 60_000 });
    state.markLaunched([{ id: 0, incarnation: 0, pid: null }, { id: 1, incarnation: 0, pid: null }], 0);
    state.applyEvents([event('node_registered', 0, { pid: 100, host: 'host-0' })]);
    const actions = state.pendingTimedOut([{ id: 1, incarnation: 0, reason: 'Unschedulable' }], 60_000);
    expect(actions).toEqual([remove, launch()]);
    expect([state.data.nodeRelaunches, state.data.phase, state.data.warnings.at(-1)]).toEqual([
      1,
      'RENDEZVOUS',
      'node 1 incarnation 0 still pending after 1m (spec.faultTolerance.pendingTimeout): Unschedulable: relaunched as incarnation 1',
    ]);
  });

  it('keeps a plan’s resources on the next incarnation', () => {
    const state = training();
    state.setNodeResources(1, 0, { memoryBytes: 8, cpu: 1 });
    state.applyEvents([event('node_failed', 1, { exitCode: 1 })]);
    expect(state.node(1)?.resources).toEqual({ memoryBytes: 8, cpu: 1 });
  });
});
