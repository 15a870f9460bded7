// The job workflow on its own: today's elasticJob code on the suite's Temporal server, with fake
// activities over an in-memory world (test/fakeJobWorld.ts). The test plays the agents and the
// API by emitting the events they would; no store, no API, no agents. The policy itself is
// tested in common/jobState*.test.ts; these stories prove the workflow carries it out.
import { WorkflowFailedError, WorkflowUpdateStage, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { initialJobState, type JobStateData, type NodeRecord } from '../../common/jobState.ts';
import { brainDown, FakeJobWorld, jobSpec, key } from '../../test/fakeJobWorld.ts';
import { fakeJobSuite } from '../../test/fakeJobSuite.ts';
import { jobOutcome, waitUntil } from '../../test/waits.ts';
import type { Carried } from './elasticJob.ts';
import { JOB_FAILED, scaleUpdate, stopSignal, type ElasticJobInput, type JobStatus } from './messages.ts';

describe('the job workflow with fake activities', () => {
  const { bounded, status, withJob } = fakeJobSuite();

  const phase = async (handle: WorkflowHandle, wanted: JobStatus['phase']) =>
    waitUntil(async () => ((await status(handle)).phase === wanted ? status(handle) : undefined), `the job ${wanted}`, 20_000, 50);
  const launched = (world: FakeJobWorld, node: string) => waitUntil(() => world.launches.some((l) => key(l) === node), `node ${node} launched`, 20_000, 50);
  /** Launched, every agent registered, the round closed: the job is RUNNING. */
  const running = async (world: FakeJobWorld, handle: WorkflowHandle, nodes: number) => {
    await waitUntil(() => world.launches.length >= nodes, `${nodes} nodes launched`, 20_000, 50);
    world.registerAll();
    world.closeRound();
    return phase(handle, 'RUNNING');
  };

  it('scales to 3 nodes when asked while the first 2 are still launching; the third joins the next round', async ({ task }) => {
    const world = new FakeJobWorld();
    world.holdLaunches();
    await withJob(task.name, world, { spec: jobSpec({ min: 1, max: 4, initial: 2, maxNodeRelaunches: 1 }) }, async (handle) => {
      await phase(handle, 'LAUNCHING');
      const update = await handle.startUpdate(scaleUpdate, { args: [{ nodes: 3, requestId: 'grow-to-3' }], waitForStage: WorkflowUpdateStage.ACCEPTED });
      expect(world.launches).toEqual([]);
      world.releaseLaunches();

      const answer = await update.result();
      expect(answer.targetNodes).toBe(3);
      expect(world.launches.map(key)).toEqual(['0#0', '1#0', '2#0']);
      expect(world.rounds.map((r) => [r.round, r.targetNodes, r.cause])).toEqual([[1, 2, 'job start'], [2, 3, 'scale to 3 nodes']]);

      const now = await running(world, handle, 3);
      expect([now.round, now.worldSize]).toEqual([2, 3]);
      world.succeedAll();
      const result = await jobOutcome(handle);
      expect(result.phase).toBe('SUCCEEDED');
      expect(result.nodes.map((n) => [n.id, n.status])).toEqual([[0, 'succeeded'], [1, 'succeeded'], [2, 'succeeded']]);
      expect(world.finished).toEqual({ phase: 'SUCCEEDED', reason: null });
    });
  });

  it('relaunches a failed node as incarnation 1 into a new round, and the job finishes', async ({ task }) => {
    const world = new FakeJobWorld();
    await withJob(task.name, world, { spec: jobSpec({ min: 2, max: 2, initial: 2, maxNodeRelaunches: 2 }) }, async (handle) => {
      await running(world, handle, 2);
      world.emit('node_failed', { id: 1, incarnation: 0 }, { exitCode: 1, reason: 'process restarts exhausted (3/3)', restarts: 3 });

      const replacing = await waitUntil(async () => {
        const now = await status(handle);
        return now.nodes.some((n) => key(n) === '1#1' && n.status === 'launching') ? now : undefined;
      }, 'node 1 relaunched as incarnation 1', 20_000, 50);
      expect(world.removed.map(key)).toEqual(['1#0']);
      expect(world.rounds.at(-1)).toEqual({ round: 2, targetNodes: 2, cause: 'relaunch node 1 as incarnation 1' });
      expect(replacing.phase).toBe('RESCALING');
      expect(replacing.nodeRelaunches).toBe(1);
      expect(replacing.nodes.map((n) => [key(n), n.status])).toEqual([['0#0', 'running'], ['1#1', 'launching']]);

      world.emit('node_registered', { id: 1, incarnation: 1 }, { pid: 2001, host: 'host-1' });
      world.closeRound();
      await phase(handle, 'RUNNING');
      world.succeedAll();
      const result = await jobOutcome(handle);
      expect(result.phase).toBe('SUCCEEDED');
      expect(result.nodeRelaunches).toBe(1);
      expect(result.nodes.map((n) => [key(n), n.rank])).toEqual([['0#0', 0], ['1#1', 1]]);
      // Both incarnations got the agents' token from the same run key.
      expect(new Set(world.launches.map((l) => l.runKey)).size).toBe(1);
    });
  });

  it('passes over an event row no schema describes with a warning, and the job goes on', async ({ task }) => {
    const world = new FakeJobWorld();
    await withJob(task.name, world, { spec: jobSpec({ min: 2, max: 2, initial: 2, maxNodeRelaunches: 2 }) }, async (handle) => {
      await running(world, handle, 2);
      const bad = world.emitMalformed('node_failed', { id: 1, incarnation: 0 }, 'data.exitCode: Invalid input: expected number, received string');
      const warned = await waitUntil(async () => {
        const now = await status(handle);
        return now.warnings.some((w) => w.startsWith(`event #${bad.id} (node_failed of node 1 incarnation 0) skipped: data.exitCode`)) ? now : undefined;
      }, 'a warning naming the skipped row', 20_000, 50);
      expect(warned.nodes.map((n) => [key(n), n.status])).toEqual([['0#0', 'running'], ['1#0', 'running']]);
      expect(warned.nodeRelaunches).toBe(0);
      world.succeedAll();
      expect((await jobOutcome(handle)).phase).toBe('SUCCEEDED');
    });
  });

  it('says the watch is failing and retried while the store is down, bounded per call, and that it succeeded once the store is back', async ({ task }) => {
    const world = new FakeJobWorld();
    await withJob(task.name, world, { spec: jobSpec({ min: 2, max: 2, initial: 2, maxNodeRelaunches: 2 }) }, async (handle) => {
      await running(world, handle, 2);
      world.watchError = new Error('connect ECONNREFUSED 127.0.0.1:3306');
      const failing = 'watchNodes is failing and will be retried in 10 s: connect ECONNREFUSED 127.0.0.1:3306';
      const warned = await waitUntil(async () => {
        const now = await status(handle);
        return now.warnings.includes(failing) ? now : undefined;
      }, 'the status to say the watch fails and is retried', 30_000, 50);
      expect(warned.phase).toBe('RUNNING');
      // One call's tries, then the workflow's pause: the store is not hammered.
      expect(world.watchFailures).toBe(4);

      world.watchError = undefined;
      world.emit('node_failed', { id: 1, incarnation: 0 }, { exitCode: 1, reason: 'process restarts exhausted (3/3)', restarts: 3 });
      const healed = await waitUntil(async () => {
        const now = await status(handle);
        return now.nodeRelaunches === 1 ? now : undefined;
      }, 'the failure seen once the store is back', 30_000, 50);
      expect(healed.warnings.slice(-2)).toEqual([failing, 'watchNodes succeeded after 1 failed call']);
      await handle.signal(stopSignal, { reason: 'test over' });
      expect(await jobOutcome(handle)).toMatchObject({ phase: 'STOPPED', reason: 'test over' });
    });
  });

  it('fails the job naming the lost node once the relaunch budget is spent and too few nodes are left', async ({ task }) => {
    const world = new FakeJobWorld();
    await withJob(task.name, world, { spec: jobSpec({ min: 2, max: 2, initial: 2, maxNodeRelaunches: 1 }) }, async (handle) => {
      await running(world, handle, 2);
      world.emit('node_failed', { id: 1, incarnation: 0 }, { exitCode: 1, reason: 'process restarts exhausted (3/3)' });
      await launched(world, '1#1');
      world.emit('node_registered', { id: 1, incarnation: 1 }, { pid: 2001, host: 'host-1' });
      world.closeRound();
      await phase(handle, 'RUNNING');
      world.emit('node_lost', { id: 1, incarnation: 1 }, { reason: 'no heartbeat for 30 s' });

      const reason = 'node 1 incarnation 1 lost: no heartbeat for 30 s; node relaunch budget exhausted (1/1) and 1 nodes left, below spec.nodes.min 2';
      const failure = await handle.result().catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      const cause = (failure as WorkflowFailedError).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect([(cause as ApplicationFailure).type, cause?.message]).toEqual([JOB_FAILED, reason]);
      const result = await jobOutcome(handle);
      expect([result.phase, result.reason, result.nodeRelaunches]).toEqual(['FAILED', reason, 1]);
      expect(world.finished).toEqual({ phase: 'FAILED', reason });
      expect(world.launches.map(key)).toEqual(['0#0', '1#0', '1#1']);
      expect(world.removed.map(key)).toEqual(['1#0', '1#1']);
    });
  });

  it('stops during a relaunch round with the reason the stop gave, launching nothing more', async ({ task }) => {
    const world = new FakeJobWorld();
    await withJob(task.name, world, { spec: jobSpec({ min: 2, max: 2, initial: 2, maxNodeRelaunches: 3 }) }, async (handle) => {
      await running(world, handle, 2);
      world.emit('node_failed', { id: 0, incarnation: 0 }, { exitCode: 1, reason: 'process restarts exhausted (3/3)' });
      await launched(world, '0#1');
      expect((await status(handle)).phase).toBe('RESCALING');

      await handle.signal(stopSignal, { reason: 'preempted for maintenance' });
      const result = await jobOutcome(handle);
      expect([result.phase, result.reason]).toEqual(['STOPPED', 'preempted for maintenance']);
      expect(result.nodes.map((n) => [key(n), n.status])).toEqual([['0#1', 'stopped'], ['1#0', 'stopped']]);
      expect(world.finished).toEqual({ phase: 'STOPPED', reason: 'preempted for maintenance' });
      expect(world.launches.map(key)).toEqual(['0#0', '1#0', '0#1']);
      expect(world.rounds).toHaveLength(2);
    });
  });

  // Deadlines that are durable timers, on one-second deadlines in real time (see fakeJobSuite on
  // why not the time-skipping test server).
  it('relaunches a node still pending after pendingTimeout, then fails the job when its new incarnation is stuck too and the budget is spent', async ({ task }) => {
    const world = new FakeJobWorld();
    world.pendingReason = 'PodScheduled False: Unschedulable: 0/3 nodes have a free GPU';
    await withJob(task.name, world, { spec: jobSpec({ min: 2, max: 2, initial: 2, maxNodeRelaunches: 1, pendingTimeout: '1s' }) }, async (handle) => {
      await launched(world, '1#0');
      world.emit('node_registered', { id: 0, incarnation: 0 }, { pid: 1000, host: 'host-0' });
      const result = await jobOutcome(handle);
      const stuck = (incarnation: number) => `node 1 incarnation ${incarnation} still pending after 1s (spec.faultTolerance.pendingTimeout): ${world.pendingReason}`;
      const reason = `${stuck(1)}; node relaunch budget exhausted (1/1) and 1 nodes left, below spec.nodes.min 2`;
      expect([result.phase, result.reason, result.nodeRelaunches]).toEqual(['FAILED', reason, 1]);
      expect(result.warnings).toContain(`${stuck(0)}: relaunched as incarnation 1`);
      expect(world.finished).toEqual({ phase: 'FAILED', reason });
      expect(world.launches.map(key)).toEqual(['0#0', '1#0', '1#1']);
      expect(world.removed.map(key)).toEqual(['1#0', '1#1']);
    });
  });

  it('asks the store to settle a round once its join deadline passes, and fails the job with the reason the store gives', async ({ task }) => {
    const world = new FakeJobWorld();
    const reason = 'rendezvous round 1 failed: 1 of 2 nodes joined within 1s (spec.rendezvous.joinTimeout)';
    world.roundCheck = () => ({ status: 'failed', reason });
    await withJob(task.name, world, { spec: jobSpec({ min: 2, max: 2, initial: 2, maxNodeRelaunches: 1, joinTimeout: '1s' }) }, async (handle) => {
      await launched(world, '1#0');
      world.emit('node_registered', { id: 0, incarnation: 0 }, { pid: 1000, host: 'host-0' });
      const result = await jobOutcome(handle);
      expect(world.expiredRounds).toEqual([1]);
      expect([result.phase, result.reason, result.nodeRelaunches]).toEqual(['FAILED', reason, 0]);
      expect(world.finished).toEqual({ phase: 'FAILED', reason });
    });
  });

  /** The carried state the latest run of the job started with (what the run before it handed over). */
  const latestCarried = async (handle: WorkflowHandle): Promise<Carried | undefined> => {
    const { runId } = await bounded(handle, () => handle.describe());
    const history = await bounded(handle, () => handle.client.getHandle(handle.workflowId, runId).fetchHistory());
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const input = defaultPayloadConverter.fromPayload<ElasticJobInput>(started!.input!.payloads![0]!);
    return input.carried as Carried | undefined;
  };
  /** Waits until a run has taken over with every event the world holds applied; returns what it was handed. */
  const handedOver = (handle: WorkflowHandle, world: FakeJobWorld) =>
    waitUntil(async () => {
      const carried = await latestCarried(handle);
      return carried?.state.cursor === world.events.length ? carried : undefined;
    }, `a run carrying event #${world.events.length}`, 20_000, 50);

  it('continues as new after every batch of events at a low cap, and every carried field survives the hand-over', async ({ task }) => {
    const world = new FakeJobWorld();
    const GiB = 1024 ** 3;
    // The Brain is down for the initial plan (the job asks again later) and raises memory after an OOM.
    world.brain = (input) =>
      input.stage === 'initial' ? brainDown() : { stage: 'oom', rule: 'oom-double-memory', reason: 'node 1 ran out of memory at 2 GiB', resources: { memoryBytes: 4 * GiB, cpu: 1 } };
    const spec = jobSpec({ min: 2, max: 4, initial: 2, maxNodeRelaunches: 1, pendingTimeout: '10m' });
    await withJob(task.name, world, { spec, continueAsNewAfterEvents: 1 }, async (handle) => {
      await running(world, handle, 2);
      await handle.executeUpdate(scaleUpdate, { args: [{ nodes: 4, requestId: 'grow-to-4' }] });
      await launched(world, '3#0');
      world.registerAll();
      world.closeRound();
      await handedOver(handle, world);
      // Node 0: a user error in every process before any step (remembered, and a crash-loop signature).
      world.emit('process_failed', { id: 0, incarnation: 0 }, {
        localRank: 0, exitCode: 1, restarts: 1, step: null, round: 2, role: 'culprit', failures: 1, allProcessesAlike: true,
        failure: { class: 'userError', rule: 'python-exception', traceback: 'ValueError: batch of 0 samples' },
        stderrTail: 'Traceback (most recent call last):\n  File "train.py", line 7, in <module>\nValueError: batch of 0 samples',
      });
      world.emit('node_check', { id: 0, incarnation: 0 }, { verdict: 'ok', exclude: false, bestSeconds: 0.05, medianSeconds: 0.06 });
      world.emit('checkpoint_committed', null, { step: 100, worldSize: 4, round: 2, doneShards: 40 });
      await handedOver(handle, world);
      world.progress = { step: 230, stepsPerSecond: 11.5, readAt: Date.now() };
      world.emit('checkpoint_committed', null, { step: 200, worldSize: 4, round: 2, doneShards: 80 });
      world.emit('epoch_done', null, { epoch: 0 });
      await handedOver(handle, world);
      // Node 1 is OOM-killed: relaunched with the Brain's memory (the whole budget); node 2 then fails: shrink to 3.
      world.emit('node_failed', { id: 1, incarnation: 0 }, { exitCode: 137, reason: 'OOMKilled', oomKilled: true });
      await launched(world, '1#1');
      world.emit('node_failed', { id: 2, incarnation: 0 }, { exitCode: 1, reason: 'process restarts exhausted (3/3)' });
      const before = await handedOver(handle, world);

      // Each fact of the story was handed over many times and is still there; a field reset at a
      // hand-over would show as its initial value here. Every field is listed, and filled.
      expect(Object.keys(before.state).sort()).toEqual(STATE_FIELDS);
      for (const field of NODE_FIELDS) expect(before.state.nodes.some((n) => n[field] !== undefined && n[field] !== null), `some node has ${field}`).toBe(true);
      const userError = 'ValueError: batch of 0 samples';
      const node2Failed = 'node 2 incarnation 0 failed with exit code 1: process restarts exhausted (3/3)';
      const at = expect.any(Number);
      expect(before.state).toEqual({
        phase: 'RESCALING', reason: null, targetNodes: 3, round: 4, roundNodes: 4, nodeRelaunches: 1, processRestarts: 1, cursor: world.events.length,
        nodes: [
          { id: 0, incarnation: 0, status: 'running', rank: 0, restarts: 1, pid: 1000, exitCode: null, reason: null, check: 'ok 0.05 s', lastError: userError },
          { id: 1, incarnation: 1, status: 'launching', rank: null, restarts: 0, pid: 101, exitCode: null, reason: null, resources: { memoryBytes: 4 * GiB, cpu: 1 }, pendingSince: at },
          { id: 2, incarnation: 0, status: 'stopped', rank: 2, restarts: 0, pid: 1002, exitCode: 1, reason: node2Failed },
          { id: 3, incarnation: 0, status: 'running', rank: 3, restarts: 0, pid: 1003, exitCode: null, reason: null },
        ],
        appliedRequestIds: ['grow-to-4'],
        warnings: [
          'Brain unavailable for the initial plan, going on without it: connect ECONNREFUSED 127.0.0.1:8080',
          `${node2Failed}; node relaunch budget exhausted (1/1): continuing with 3 nodes`,
        ],
        plans: [{ stage: 'oom', rule: 'oom-double-memory', reason: 'node 1 ran out of memory at 2 GiB', applied: `node 1 incarnation 1: memory ${2 * GiB} → ${4 * GiB} bytes`, at }],
        brainInitialMissed: true,
        userErrors: [{ step: null, signature: userError, node: 0, round: 2 }],
        crashLoop: `userError: ${userError}`,
        checkpointStep: 200,
        checkpointRate: { at, stepsPerSecond: expect.any(Number) },
        epochsDone: 1,
        openRound: { round: 4, checkAt: at },
        progress: world.progress,
      });

      // A late registration of a replaced incarnation changes nothing but the cursor: the next hand-over is the same state.
      const late = world.emit('node_registered', { id: 1, incarnation: 0 }, { pid: 4242, host: 'host-1' });
      const after = await handedOver(handle, world);
      for (const field of STATE_FIELDS) {
        if (field === 'cursor') expect(after.state.cursor).toBe(late.id);
        else expect(after.state[field], field).toEqual(before.state[field]);
      }
      expect(after.runKey).toBe(before.runKey);
      expect([after.pendingScale, after.stopReason, after.token]).toEqual([[], null, undefined]);
      // Every launch, in whichever run, derived the agents' token from the first run's key.
      expect(world.launches.map((l) => [key(l), l.runKey === before.runKey])).toEqual([['0#0', true], ['1#0', true], ['2#0', true], ['3#0', true], ['1#1', true]]);
      expect(world.launches.at(-1)?.resources).toEqual({ memoryBytes: 4 * GiB, cpu: 1 });

      await handle.signal(stopSignal, { reason: 'story told' });
      const result = await jobOutcome(handle);
      expect([result.phase, result.reason, result.checkpointStep, result.epochsDone]).toEqual(['STOPPED', 'story told', 200, 1]);
    });
  });

  // A scale or a stop that arrives while a run hands over (it waits for its handlers to finish)
  // travels in pendingScale / stopReason; runs carried over before runKey was named call it token.
  const runningTwoNodes = (world: FakeJobWorld, runKey: string): JobStateData => {
    for (const id of [0, 1]) world.launches.push({ id, incarnation: 0, runKey });
    world.rounds.push({ round: 1, targetNodes: 2, cause: 'job start' });
    const state = initialJobState(2);
    state.nodes.forEach((n, rank) => Object.assign(n, { status: 'running', rank, pid: 100 + n.id }));
    return { ...state, phase: 'RUNNING', round: 1, roundNodes: 2 };
  };

  it('a run handed a queued scale under the old name of its key applies the scale with that key and carries it on as runKey', async ({ task }) => {
    const world = new FakeJobWorld();
    const carried: Omit<Carried, 'runKey'> = { state: runningTwoNodes(world, 'key-named-token'), token: 'key-named-token', pendingScale: [{ nodes: 3, requestId: 'queued-at-hand-over' }], stopReason: null };
    const spec = jobSpec({ min: 1, max: 4, initial: 2, maxNodeRelaunches: 1 });
    await withJob(task.name, world, { spec, continueAsNewAfterEvents: 1, carried }, async (handle) => {
      await launched(world, '2#0');
      expect(world.launches.map((l) => [key(l), l.runKey])).toEqual([['0#0', 'key-named-token'], ['1#0', 'key-named-token'], ['2#0', 'key-named-token']]);
      expect(world.rounds.at(-1)).toEqual({ round: 2, targetNodes: 3, cause: 'scale to 3 nodes' });
      const next = await handedOver(handle, world);
      expect([next.runKey, next.token, next.pendingScale, next.state.targetNodes, next.state.appliedRequestIds]).toEqual(['key-named-token', undefined, [], 3, ['queued-at-hand-over']]);
      await handle.signal(stopSignal, {});
      expect((await jobOutcome(handle)).reason).toBe('stopped by user');
    });
  });

  it('a run handed a stop ends the job STOPPED with its reason at once, launching nothing', async ({ task }) => {
    const world = new FakeJobWorld();
    const carried: Carried = { state: runningTwoNodes(world, 'k'), runKey: 'k', pendingScale: [], stopReason: 'stopped while the run handed over' };
    await withJob(task.name, world, { spec: jobSpec({ min: 1, max: 4, initial: 2, maxNodeRelaunches: 1 }), carried }, async (handle) => {
      const result = await jobOutcome(handle);
      expect([result.phase, result.reason]).toEqual(['STOPPED', 'stopped while the run handed over']);
      expect(result.nodes.map((n) => n.status)).toEqual(['stopped', 'stopped']);
      expect(world.finished).toEqual({ phase: 'STOPPED', reason: 'stopped while the run handed over' });
      expect(world.launches).toHaveLength(2);
    });
  });
});

/** Every field of the carried job state and of a node record: the compiler names one added and missing here. */
const STATE_FIELDS = Object.keys({
  phase: 1, reason: 1, targetNodes: 1, round: 1, roundNodes: 1, nodes: 1, nodeRelaunches: 1, processRestarts: 1, cursor: 1,
  appliedRequestIds: 1, warnings: 1, plans: 1, brainInitialMissed: 1, userErrors: 1, checkpointStep: 1, checkpointRate: 1,
  epochsDone: 1, crashLoop: 1, openRound: 1, progress: 1,
} satisfies Record<keyof JobStateData, 1>).sort() as (keyof JobStateData)[];
const NODE_FIELDS = Object.keys({
  id: 1, incarnation: 1, status: 1, rank: 1, restarts: 1, pid: 1, exitCode: 1, reason: 1, resources: 1, check: 1, lastError: 1, pendingSince: 1,
} satisfies Record<keyof NodeRecord, 1>) as (keyof NodeRecord)[];
