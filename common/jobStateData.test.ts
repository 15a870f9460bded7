// The job master and the data plane: committed checkpoints, epochs and poison shards arrive as
// events (one per commit, not per rank) and shape the state and the status.
import { describe, expect, it } from 'vitest';
import type { EventDataInput, JobEvent, NodeEventKind } from './events.ts';
import { initialJobState, JobState } from './jobState.ts';
import { roundClosedData, testEvent } from './eventFixtures.ts';

let nextId = 0;
const event = <K extends NodeEventKind>(kind: K, data: EventDataInput<K>): JobEvent => testEvent({ id: ++nextId, kind, nodeId: null, incarnation: null, data, at: 0 });
/** Every rank of round 1's one-node world reported `step`'s checkpoint, with 5 shards done. */
const committed = (step: number): JobEvent => event('checkpoint_committed', { step, worldSize: 1, round: 1, doneShards: 5 });

function running(): JobState {
  const state = new JobState(initialJobState(1), { minNodes: 1, maxNodes: 1, unit: 1, nprocPerNode: 1, maxNodeRelaunches: 1 });
  state.markLaunched([{ id: 0, incarnation: 0, pid: 1 }]);
  state.applyEvents([event('round_opened', { round: 1, cause: 'job start' }), event('round_closed', roundClosedData(1, [0]))]);
  return state;
}

describe('JobState data events', () => {
  it('keeps the newest committed step and counts finished epochs', () => {
    const state = running();
    expect(state.applyEvents([committed(8), committed(4), event('epoch_done', { epoch: 0 })])).toEqual([]);
    expect(state.data.checkpointStep).toBe(8);
    expect(state.data.epochsDone).toBe(1);
    state.applyEvents([event('ledger_rewound', { round: 2, step: 8, requeued: 3 }), event('epoch_done', { epoch: 1 })]);
    expect(state.data).toMatchObject({ phase: 'RUNNING', epochsDone: 2 });
  });

  it('measures the training rate between the last two committed checkpoints', () => {
    const state = running();
    const at = (step: number, ms: number): JobEvent => ({ ...committed(step), at: ms });
    state.applyEvents([at(100, 10_000)]);
    expect(state.data.checkpointRate).toEqual({ at: 10_000 });
    state.applyEvents([at(150, 30_000), at(120, 31_000)]);
    expect(state.data.checkpointRate).toEqual({ at: 30_000, stepsPerSecond: 2.5 });
  });

  it('fails the job on a poison shard under onPoison: fail, and only warns under skip', () => {
    const failing = running();
    failing.applyEvents([event('shard_poisoned', { epoch: 1, shardIndex: 7, attempts: 4, policy: 'fail' })]);
    expect(failing.data.phase).toBe('FAILED');
    expect(failing.data.reason).toBe('shard 7 of epoch 1 failed 4 times: poison (spec.dataset.onPoison: fail)');

    const skipping = running();
    skipping.applyEvents([event('shard_poisoned', { epoch: 0, shardIndex: 2, attempts: 4, policy: 'skip' })]);
    expect(skipping.data.phase).toBe('RUNNING');
    expect(skipping.data.warnings).toContain('shard 2 of epoch 0 failed 4 times: skipped (spec.dataset.onPoison: skip)');
  });

  it('reads states carried from before the fields existed', () => {
    const data = initialJobState(1);
    delete data.checkpointStep;
    delete data.epochsDone;
    const state = new JobState(data, { minNodes: 1, maxNodes: 1, unit: 1, nprocPerNode: 1, maxNodeRelaunches: 1 });
    state.applyEvents([event('epoch_done', { epoch: 0 })]);
    expect(state.data.epochsDone).toBe(1);
  });
});
