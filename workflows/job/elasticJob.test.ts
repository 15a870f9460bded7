// The job workflow on its own: today's elasticJob code on the suite's Temporal server, with fake
// activities over an in-memory world (test/fakeJobWorld.ts). The test plays the agents and the
// API by emitting the events they would; no store, no API, no agents. The policy itself is
// tested in common/jobState*.test.ts; these stories prove the workflow carries it out.
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, WorkflowUpdateStage, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FakeJobWorld, jobSpec, key } from '../../test/fakeJobWorld.ts';
import { taskQueueFor } from '../../test/helpers.ts';
import { jobOutcome, waitUntil } from '../../test/waits.ts';
import { bundleWorkflows, createJobWorker } from '../../workers/jobWorker.ts';
import type { elasticJob } from './elasticJob.ts';
import { JOB_FAILED, scaleUpdate, statusQuery, stopSignal, type ElasticJobInput, type JobStatus } from './messages.ts';

describe('the job workflow with fake activities', () => {
  let env: TestWorkflowEnvironment;
  let bundle: WorkflowBundleWithSourceMap;

  beforeAll(async () => {
    env = await TestWorkflowEnvironment.createFromExistingServer({ address: inject('temporalAddress') });
    bundle = await bundleWorkflows();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  /** Runs `story` with a worker on its own task queue serving `world`; the job starts with a random id. */
  const withJob = async <T>(
    title: string,
    world: FakeJobWorld,
    input: Omit<ElasticJobInput, 'jobId'>,
    story: (handle: WorkflowHandle<typeof elasticJob>) => Promise<T>,
  ): Promise<T> => {
    const taskQueue = taskQueueFor(title);
    const worker = await createJobWorker({ connection: env.nativeConnection, namespace: 'default', taskQueue, activities: world.activities(), workflowBundle: bundle });
    return worker.runUntil(async () => {
      const jobId = `fake-${randomUUID()}`;
      const handle = await env.client.workflow.start<typeof elasticJob>('elasticJob', { args: [{ jobId, ...input }], taskQueue, workflowId: `job-${jobId}` });
      return story(handle);
    });
  };
  const status = (handle: WorkflowHandle) => handle.query(statusQuery);
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

      world.emit('node_registered', { id: 1, incarnation: 1 }, { pid: 2001 });
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

  it('fails the job naming the lost node once the relaunch budget is spent and too few nodes are left', async ({ task }) => {
    const world = new FakeJobWorld();
    await withJob(task.name, world, { spec: jobSpec({ min: 2, max: 2, initial: 2, maxNodeRelaunches: 1 }) }, async (handle) => {
      await running(world, handle, 2);
      world.emit('node_failed', { id: 1, incarnation: 0 }, { exitCode: 1, reason: 'process restarts exhausted (3/3)' });
      await launched(world, '1#1');
      world.emit('node_registered', { id: 1, incarnation: 1 });
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
});
