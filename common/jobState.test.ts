// The job master's policy as tables: events and commands in, state and actions out.
import { describe, expect, it } from 'vitest';
import { NODE_EVENT_KINDS, type EventDataInput, type JobEvent, type NodeEventKind } from './events.ts';
import { initialJobState, JOB_STATE_EVENT_KINDS, JobState, type JobLimits } from './jobState.ts';
import { ROUND_CAUSE } from './jobReasons.ts';
import { roundClosedData, testEvent } from './eventFixtures.ts';

const limits = (o: Partial<JobLimits> = {}): JobLimits => ({
  minNodes: 1,
  maxNodes: 4,
  unit: 1,
  nprocPerNode: 2,
  maxNodeRelaunches: 2,
  ...o,
});

let nextId = 0;
const event = <K extends NodeEventKind>(kind: K, node: number | null, incarnation: number | null, data: EventDataInput<K>): JobEvent => testEvent({
  id: ++nextId,
  kind,
  nodeId: node,
  incarnation,
  data,
  at: 0,
});

/** One event of each kind JobState ignores, as its writer sends it. */
const IGNORED_KIND_DATA: { [K in NodeEventKind]?: EventDataInput<K> } = {
  node_launched: { pid: 4242, logPath: '/tmp/rover/node-0.log', host: 'host-0' },
  node_stopped: {},
  checkpoint_restored: { step: 9, source: 'shm', round: 2, seconds: 1.5 },
  ledger_rewound: { round: 2, step: 9, requeued: 3 },
  stack_dump: { hang: 1, method: 'py-spy', pid: 4243, localRank: 0, stack: 'Thread 1 (idle): "MainThread"', logTail: 'step 9', processTree: '4242 python3 train.py' },
  brain_plan: { optimizer: 'running', rule: 'throughput', reason: 'x', decidedBy: 'brain', nodes: 2, inputs: {} },
  control_plane_outage: { downMs: 12_000, failedCall: 'heartbeat', lastError: 'connect ECONNREFUSED' },
  standby_failed: { localRank: 0, pid: null, preload: ['torch'], reason: 'exited', exitCode: 1, signal: null, stderrTail: 'ModuleNotFoundError' },
};

/** A job of `nodes` nodes, launched and training in round 1. */
function training(nodes = 2, l: Partial<JobLimits> = {}): JobState {
  const state = new JobState(initialJobState(nodes), limits(l));
  state.markLaunched(state.activeNodes().map((n) => ({ id: n.id, incarnation: 0, pid: 100 + n.id })));
  state.applyEvents([
    event('round_opened', null, null, { round: 1, cause: 'job start' }),
    event('round_closed', null, null, roundClosedData(1, state.activeNodes().map((n) => n.id))),
  ]);
  return state;
}

describe('JobState', () => {
  it('passes over a row watchNodes rejected with a warning, in its place, and goes on', () => {
    const state = training(2);
    const rejected = { id: nextId + 1, kind: 'node_failed', nodeId: 1, incarnation: 0, problem: 'data.exitCode: Invalid input: expected number, received string' };
    nextId += 1;
    const after = event('node_failed', 0, 0, { exitCode: 3, reason: 'boom' });
    const actions = state.applyEvents([after], [rejected]);
    expect(state.data.cursor).toBe(after.id);
    expect(state.data.warnings).toContain(`event #${rejected.id} (node_failed of node 1 incarnation 0) skipped: data.exitCode: Invalid input: expected number, received string`);
    // Node 1 is untouched; node 0's failure after the rejected row is applied.
    expect(state.node(1)?.status).toBe('running');
    expect(actions.map((a) => a.type)).toEqual(['remove', 'openRound', 'launch']);
    // A batch of rejected rows alone moves the cursor past them, so they are not read again.
    state.applyEvents([], [{ ...rejected, id: after.id + 5 }]);
    expect(state.data.cursor).toBe(after.id + 5);
  });

  it.each(NODE_EVENT_KINDS.filter((k) => !JOB_STATE_EVENT_KINDS.includes(k)))('ignores %s, so watchNodes need not wake the workflow for it', (kind) => {
    const state = training(2);
    const before = JSON.stringify({ ...state.data, cursor: 0 });
    const data = IGNORED_KIND_DATA[kind];
    expect(data, `a sample of ${kind} in IGNORED_KIND_DATA`).toBeDefined();
    expect(state.applyEvents([event(kind, 0, 0, data!)])).toEqual([]);
    expect(JSON.stringify({ ...state.data, cursor: 0 })).toBe(before);
  });

  it('runs once the first round closes, with the world size of its nodes', () => {
    const state = training(3);
    expect(state.data.phase).toBe('RUNNING');
    expect(state.worldSize()).toBe(6);
    expect(state.activeNodes().map((n) => [n.rank, n.status])).toEqual([[0, 'running'], [1, 'running'], [2, 'running']]);
  });

  it('succeeds only when every active node succeeded', () => {
    const state = training(2);
    state.applyEvents([event('node_succeeded', 0, 0, { round: 1, restarts: 0 })]);
    expect(state.data.phase).toBe('RUNNING');
    state.applyEvents([event('node_succeeded', 1, 0, { round: 1, restarts: 0 })]);
    expect(state.data.phase).toBe('SUCCEEDED');
  });

  it('succeeds once the whole world of the latest round succeeded, stopping the nodes that waited outside it', () => {
    // 3 nodes, unit 2: round 1's world is nodes 0 and 1; node 2 waits for a round no one opens.
    const cut = (worldEndsJob: boolean): JobState => {
      const state = new JobState(initialJobState(3), limits({ unit: 2, worldEndsJob }));
      state.markLaunched(state.activeNodes().map((n) => ({ id: n.id, incarnation: 0, pid: 100 + n.id })));
      state.applyEvents([
        event('round_opened', null, null, { round: 1, cause: 'job start' }),
        event('round_closed', null, null, roundClosedData(1, [0, 1], [2])),
        event('node_succeeded', 0, 0, { round: 1, restarts: 0 }),
      ]);
      expect(state.data.phase).toBe('RUNNING');
      state.applyEvents([event('node_succeeded', 1, 0, { round: 1, restarts: 0 })]);
      return state;
    };
    const ended = cut(true);
    expect(ended.data.phase).toBe('SUCCEEDED');
    expect(ended.data.nodes.map((n) => n.status)).toEqual(['succeeded', 'succeeded', 'stopped']);
    expect(ended.data.warnings.at(-1)).toBe('the world of round 1 (2 nodes) finished; 1 waiting node outside it stopped');
    // A run recorded before the rule replays as it ran: still waiting on node 2.
    expect(cut(false).data.phase).toBe('RUNNING');
  });

  it('does not end the job while a member of the world is being replaced', () => {
    const state = training(2, { worldEndsJob: true });
    state.applyEvents([event('node_succeeded', 0, 0, { round: 1, restarts: 0 }), event('node_lost', 1, 0, { reason: 'gone' })]);
    expect(state.data.phase).not.toBe('SUCCEEDED');
  });

  it('counts process restarts without touching the node budget', () => {
    const state = training(2);
    const actions = state.applyEvents([event('process_failed', 1, 0, { round: 1, restarts: 1, exitCode: 1 })]);
    expect(actions).toEqual([]);
    expect(state.data.processRestarts).toBe(1);
    expect(state.node(1)?.restarts).toBe(1);
    expect(state.data.nodeRelaunches).toBe(0);
  });

  it('ignores events it has applied already and events of an old incarnation', () => {
    const state = training(2);
    const lost = event('node_lost', 1, 0, { reason: 'gone' });
    expect(state.applyEvents([lost])).toHaveLength(3);
    expect(state.applyEvents([lost])).toEqual([]);
    expect(state.applyEvents([event('node_failed', 1, 0, { exitCode: 1 })])).toEqual([]);
    expect(state.node(1)?.incarnation).toBe(1);
  });

  it('relaunches a node lost to the platform without spending the budget, even when it is spent', () => {
    const state = training(2);
    state.data.nodeRelaunches = 2;
    const lost = event('node_lost', 1, 0, { reason: 'agent process 7 is gone', platformCause: 'the stack was stopped (rover down)' });
    expect(state.applyEvents([lost]).map((a) => a.type)).toEqual(['remove', 'openRound', 'launch']);
    expect([state.data.nodeRelaunches, state.node(1)?.incarnation, state.data.phase]).toEqual([2, 1, 'RESCALING']);
    expect(state.data.warnings.at(-1)).toMatch(/relaunched as incarnation 1 \(the stack was stopped \(rover down\); not counted against maxNodeRelaunches\)/);
  });

  describe('a failed or lost node', () => {
    const cases: { name: string; relaunchesUsed: number; nodes: number; min: number; unit?: number; kind: NodeEventKind; expectPhase: string; expectActions: string[]; reason?: RegExp }[] = [
      { name: 'is relaunched as the next incarnation within budget', relaunchesUsed: 0, nodes: 2, min: 2, kind: 'node_failed', expectPhase: 'RESCALING', expectActions: ['remove', 'openRound', 'launch'] },
      { name: 'lost is relaunched too', relaunchesUsed: 1, nodes: 2, min: 2, kind: 'node_lost', expectPhase: 'RESCALING', expectActions: ['remove', 'openRound', 'launch'] },
      { name: 'shrinks the job when the budget is spent and min allows', relaunchesUsed: 2, nodes: 3, min: 2, kind: 'node_failed', expectPhase: 'RESCALING', expectActions: ['remove', 'openRound'] },
      { name: 'shrinks to a multiple of unit', relaunchesUsed: 2, nodes: 3, min: 1, unit: 1, kind: 'node_lost', expectPhase: 'RESCALING', expectActions: ['remove', 'openRound'] },
      { name: 'fails the job when the budget is spent and too few nodes remain', relaunchesUsed: 2, nodes: 2, min: 2, kind: 'node_failed', expectPhase: 'FAILED', expectActions: ['remove'], reason: /node 1 incarnation 0 failed with exit code 137.*budget exhausted \(2\/2\).*below spec.nodes.min 2/ },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const state = training(c.nodes, { minNodes: c.min, unit: c.unit ?? 1 });
        state.data.nodeRelaunches = c.relaunchesUsed;
        const actions = state.applyEvents([event(c.kind, 1, 0, { exitCode: 137, reason: 'oom' })]);
        expect(actions.map((a) => a.type).sort()).toEqual([...c.expectActions].sort());
        expect(state.data.phase).toBe(c.expectPhase);
        if (c.reason) expect(state.data.reason).toMatch(c.reason);
        if (c.expectPhase === 'FAILED') expect(state.data.nodes.filter((n) => ['pending', 'launching', 'running'].includes(n.status)), 'no node listed live after the end').toEqual([]);
      });
    }

    it('orders the relaunch so the round opens before the new incarnation joins', () => {
      const state = training(2);
      const actions = state.applyEvents([event('node_failed', 0, 0, { exitCode: 1 })]);
      expect(actions).toEqual([
        { type: 'remove', nodes: [{ id: 0, incarnation: 0 }] },
        { type: 'openRound', cause: 'relaunch node 0 as incarnation 1' },
        { type: 'launch', nodes: [{ id: 0, incarnation: 1 }] },
      ]);
    });
  });

  describe('scaling', () => {
    it.each([
      { nodes: 0, refusal: /within spec.nodes \[min 1, max 4\]/ },
      { nodes: 5, refusal: /cannot scale to 5 nodes/ },
      { nodes: 2.5, refusal: /cannot scale to 2.5 nodes/ },
      { nodes: 3, unit: 2, refusal: /multiple of spec.nodes.unit \(2\)/ },
      { nodes: 3, refusal: undefined },
    ])('checks $nodes nodes (unit $unit)', ({ nodes, unit, refusal }) => {
      const state = training(2, { unit: unit ?? 1 });
      const answer = state.scaleRefusal(nodes);
      if (refusal) expect(answer).toMatch(refusal);
      else expect(answer).toBeUndefined();
    });

    it('adds nodes with fresh ids and opens a round before launching them', () => {
      const state = training(2);
      const actions = state.scale(4, 'r1');
      expect(actions).toEqual([
        { type: 'openRound', cause: 'scale to 4 nodes' },
        { type: 'launch', nodes: [{ id: 2, incarnation: 0 }, { id: 3, incarnation: 0 }] },
      ]);
      expect(state.data.phase).toBe('RESCALING');
      expect(state.data.targetNodes).toBe(4);
    });

    it('removes the highest nodes when shrinking', () => {
      const state = training(3);
      expect(state.scale(1, undefined)).toEqual([
        { type: 'remove', nodes: [{ id: 1, incarnation: 0 }, { id: 2, incarnation: 0 }] },
        { type: 'openRound', cause: 'scale to 1 nodes' },
      ]);
      expect(state.activeNodes().map((n) => n.id)).toEqual([0]);
    });

    it("opens the round with a Brain plan's cause: its optimizer and reason", () => {
      const cause = ROUND_CAUSE.brainPlan('running', 'throughput rose 1.4× per node', 3);
      expect(cause).toBe('Brain plan (running optimizer: throughput rose 1.4× per node): scale to 3 nodes');
      expect(training(2).scale(3, 'brain-running-1', cause)[0]).toEqual({ type: 'openRound', cause });
    });

    it('applies a request id once, even after the state went through JSON', () => {
      const state = training(2);
      state.scale(3, 'same');
      const revived = new JobState(JSON.parse(JSON.stringify(state.data)), state.limits);
      expect(revived.scale(3, 'same')).toEqual([]);
      expect(revived.activeNodes()).toHaveLength(3);
    });
  });

  it('takes an initial node count from a plan only before anything launched', () => {
    const fresh = new JobState(initialJobState(2), limits());
    expect(fresh.setInitialNodes(3)).toBe(true);
    expect(fresh.data.targetNodes).toBe(3);
    expect(fresh.activeNodes().map((n) => [n.id, n.incarnation, n.status])).toEqual([[0, 0, 'pending'], [1, 0, 'pending'], [2, 0, 'pending']]);
    expect(training(2).setInitialNodes(3)).toBe(false);
  });

  it('keeps every field through a JSON round trip (continue-as-new)', () => {
    const state = training(2);
    state.applyEvents([event('process_failed', 0, 0, { round: 1, restarts: 1, exitCode: 1 }), event('node_lost', 1, 0, { reason: 'gone' })]);
    state.scale(3, 'req-1');
    state.warn('something odd');
    const revived = JSON.parse(JSON.stringify(state.data)) as typeof state.data;
    expect(revived).toEqual(state.data);
    expect(Object.keys(revived).sort()).toEqual(Object.keys(initialJobState(1)).sort());
  });
});
