// JobState on straggler_detected (straggler detection while training, api/stragglerWatch.ts).
import { describe, expect, it } from 'vitest';
import type { EventDataInput, JobEvent, NodeEventKind } from './events.ts';
import { initialJobState, JobState } from './jobState.ts';
import { roundClosedData, testEvent } from './eventFixtures.ts';

let nextId = 0;
const event = <K extends NodeEventKind>(kind: K, node: number | null, incarnation: number | null, data: EventDataInput<K>): JobEvent => testEvent({
  id: ++nextId,
  kind,
  nodeId: node,
  incarnation,
  data,
  at: 0,
});

function training(maxNodeRelaunches: number): JobState {
  const state = new JobState(initialJobState(3), { minNodes: 1, maxNodes: 3, unit: 1, nprocPerNode: 1, maxNodeRelaunches });
  state.markLaunched(state.activeNodes().map((n) => ({ id: n.id, incarnation: 0, pid: 100 + n.id })));
  state.applyEvents([
    event('round_opened', null, null, { round: 1, cause: 'job start' }),
    event('round_closed', null, null, roundClosedData(1, state.activeNodes().map((n) => n.id))),
  ]);
  return state;
}

describe('JobState on straggler_detected', () => {
  it('only warns when relaunch is off', () => {
    const state = training(2);
    expect(state.applyEvents([event('straggler_detected', 2, 0, { seconds: 0.6, medianSeconds: 0.1, relaunch: false })])).toEqual([]);
    expect(state.data.warnings.join('\n')).toMatch(/node 2 incarnation 0 is a straggler: step compute 0\.60 s \(job median 0\.10 s\)/);
    expect(state.data.nodeRelaunches).toBe(0);
  });

  it('relaunches the node as its next incarnation, counted against maxNodeRelaunches', () => {
    const state = training(1);
    const actions = state.applyEvents([event('straggler_detected', 2, 0, { seconds: 0.6, medianSeconds: 0.1, relaunch: true })]);
    expect(actions.map((a) => a.type)).toEqual(['remove', 'openRound', 'launch']);
    expect(state.data.nodeRelaunches).toBe(1);
    expect(state.activeNodes().find((n) => n.id === 2)).toMatchObject({ incarnation: 1 });
    // Budget spent: the next incarnation is only reported.
    expect(state.applyEvents([event('straggler_detected', 2, 1, { seconds: 0.6, medianSeconds: 0.1, relaunch: true })])).toEqual([]);
    expect(state.data.warnings.at(-1)).toMatch(/not relaunched: node relaunch budget exhausted \(1\/1\)/);
  });
});
