// The job master's answer to pre-flight node check verdicts (node_check events from the API).
import { describe, expect, it } from 'vitest';
import type { EventDataInput, JobEvent } from './events.ts';
import { initialJobState, JobState, type JobLimits } from './jobState.ts';
import { testEvent } from './eventFixtures.ts';

const limits = (o: Partial<JobLimits> = {}): JobLimits => ({ minNodes: 3, maxNodes: 4, unit: 1, nprocPerNode: 1, maxNodeRelaunches: 0, ...o });

let nextId = 0;
const verdict = (node: number, data: EventDataInput<'node_check'>): JobEvent => testEvent({ id: ++nextId, kind: 'node_check', nodeId: node, incarnation: 0, data, at: 0 });

/** Four nodes launched and registered, before any rendezvous. */
function launched(l: Partial<JobLimits> = {}): JobState {
  const state = new JobState(initialJobState(4), limits(l));
  state.markLaunched(state.activeNodes().map((n) => ({ id: n.id, incarnation: 0, pid: 100 + n.id })));
  state.applyEvents(state.activeNodes().map((n) => testEvent({ id: ++nextId, kind: 'node_registered', nodeId: n.id, incarnation: 0, data: { pid: 100 + n.id, host: `host-${n.id}` }, at: 0 })));
  return state;
}

describe('JobState and the node check', () => {
  it('relaunches a faulty node as a new incarnation without spending the relaunch budget', () => {
    const state = launched();
    const actions = state.applyEvents([verdict(1, { verdict: 'faulty', exclude: false, bestSeconds: null, medianSeconds: 0.05 })]);
    expect(actions).toEqual([
      { type: 'remove', nodes: [{ id: 1, incarnation: 0 }] },
      { type: 'openRound', cause: 'relaunch node 1 as incarnation 1 after its node check failed' },
      { type: 'launch', nodes: [{ id: 1, incarnation: 1, avoidHostOfIncarnation: 0 }] },
    ]);
    expect(state.data.nodeRelaunches).toBe(0);
    expect(state.node(1)).toMatchObject({ incarnation: 1, status: 'pending' });
    expect(state.data.phase).not.toBe('FAILED');
  });

  it('records an ok verdict per node for the status', () => {
    const state = launched();
    expect(state.applyEvents([verdict(0, { verdict: 'ok', exclude: false, bestSeconds: 0.042, medianSeconds: 0.05 })])).toEqual([]);
    expect(state.node(0)?.check).toBe('ok 0.04 s');
  });

  it('excludes a straggler the check marked for exclusion: the API decided it against spec.nodes.min', () => {
    // minNodes 4 by the workflow's count: the check's decision stands (the API holds the agent).
    const state = launched({ minNodes: 4, checkDecidesExclusion: true });
    const actions = state.applyEvents([verdict(2, { verdict: 'straggler', exclude: true, bestSeconds: 1.6, medianSeconds: 0.05 })]);
    expect(actions).toEqual([
      { type: 'remove', nodes: [{ id: 2, incarnation: 0 }] },
      { type: 'openRound', cause: 'exclude straggler node 2' },
    ]);
    expect(state.data.targetNodes).toBe(3);
    expect(state.node(2)).toMatchObject({ status: 'stopped', check: 'straggler 1.60 s (median 0.05 s)' });
  });

  it('only reports a straggler the check kept', () => {
    const state = launched({ checkDecidesExclusion: true });
    expect(state.applyEvents([verdict(2, { verdict: 'straggler', exclude: false, bestSeconds: 1.6, medianSeconds: 0.05 })])).toEqual([]);
    expect(state.node(2)?.status).toBe('running');
    expect(state.data.warnings.at(-1)).toMatch(/^node 2 incarnation 0 is a straggler in the node check/);
  });

  it('in runs recorded before, also keeps an excluded straggler when its own count says spec.nodes.min needs it', () => {
    for (const [minNodes, excluded] of [[3, true], [4, false]] as const) {
      const state = launched({ minNodes });
      state.applyEvents([verdict(2, { verdict: 'straggler', exclude: true, bestSeconds: 1.6, medianSeconds: 0.05 })]);
      expect(state.node(2)?.status).toBe(excluded ? 'stopped' : 'running');
    }
  });
});
