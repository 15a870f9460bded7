// The OOM path of the job master: an out-of-memory exit relaunches the node after asking the
// Brain for an OOM plan; a plan's resources stay with the node's later incarnations.
import { describe, expect, it } from 'vitest';
import type { EventDataInput, JobEvent, NodeEventKind } from './events.ts';
import { initialJobState, JobState } from './jobState.ts';
import { roundClosedData, testEvent } from './eventFixtures.ts';

let nextId = 0;
const event = <K extends NodeEventKind>(kind: K, node: number | null, incarnation: number | null, data: EventDataInput<K>): JobEvent => testEvent({
  id: ++nextId, kind, nodeId: node, incarnation, data, at: 0,
});

function training(): JobState {
  const state = new JobState(initialJobState(2), { minNodes: 1, maxNodes: 2, unit: 1, nprocPerNode: 1, maxNodeRelaunches: 3 });
  state.markLaunched(state.activeNodes().map((n) => ({ id: n.id, incarnation: 0, pid: 1 })));
  state.applyEvents([
    event('round_opened', null, null, { round: 1, cause: 'job start' }),
    event('round_closed', null, null, roundClosedData(1, [0, 1])),
  ]);
  return state;
}

describe('JobState OOM path', () => {
  const cases: { [K in NodeEventKind]: [string, K, EventDataInput<K>] }[NodeEventKind][] = [
    ['node_failed with oomKilled', 'node_failed', { exitCode: 1, oomKilled: true }],
    ['node_lost with oomKilled (platform OOM kill)', 'node_lost', { reason: 'OOMKilled', oomKilled: true }],
    // As the API writes it: classified where the exit was seen.
    ['process_failed with oomKilled (the oom-killed rule makes it a node fault)', 'process_failed', { round: 1, restarts: 1, exitCode: 1, oomKilled: true, stderrTail: 'MemoryError', failure: { class: 'nodeFault', rule: 'oom-killed', traceback: null } }],
  ];
  it.each(cases)('%s: asks for an OOM plan before relaunching', (_t, kind, data) => {
    const state = training();
    const actions = state.applyEvents([event(kind, 1, 0, data)]);
    expect(actions.map((a) => a.type)).toEqual(['remove', 'openRound', 'oomPlan', 'launch']);
    expect(actions[2]).toMatchObject({ type: 'oomPlan', node: { id: 1, incarnation: 1 }, failedIncarnation: 0, exitCode: kind === 'node_lost' ? null : 1 });
  });

  it('relaunches without a plan when the failure was not OOM', () => {
    const actions = training().applyEvents([event('node_failed', 1, 0, { exitCode: 3 })]);
    expect(actions.map((a) => a.type)).toEqual(['remove', 'openRound', 'launch']);
  });

  it('keeps a plan\'s resources for later incarnations and records the plans', () => {
    const state = training();
    state.applyEvents([event('node_failed', 1, 0, { exitCode: 1, oomKilled: true })]);
    state.setNodeResources(1, 1, { memoryBytes: 2048, cpu: 1 });
    state.setNodeResources(1, 0, { memoryBytes: 1, cpu: 1 }); // a stale incarnation changes nothing
    state.recordPlan({ stage: 'oom', rule: 'oom-factor', reason: 'why', applied: 'node 1 memory', at: 1 });
    state.applyEvents([event('node_failed', 1, 1, { exitCode: 9 })]);
    expect(state.node(1)).toMatchObject({ incarnation: 2, resources: { memoryBytes: 2048, cpu: 1 } });
    expect(state.node(0)?.resources).toBeUndefined();
    expect(JSON.parse(JSON.stringify(state.data)).plans).toEqual([{ stage: 'oom', rule: 'oom-factor', reason: 'why', applied: 'node 1 memory', at: 1 }]);
  });
});
