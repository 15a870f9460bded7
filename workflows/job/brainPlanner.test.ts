// The job workflow and its Brain, with fake activities (test/fakeJobWorld.ts): a plan that scales
// the job opens a round whose cause names the plan, an initial plan missed while the Brain was
// down arrives after the first round as a running plan, and a stop does not wait for a Brain that
// hangs. The rules themselves are tested in
// common/brainPlanRules.test.ts; these stories prove the workflow carries them out.
import type { WorkflowHandle } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import type { BrainPlan, OptimizeActivityInput } from '../../common/brainPlans.ts';
import { brainDown, FakeJobWorld, jobSpec } from '../../test/fakeJobWorld.ts';
import { fakeJobSuite } from '../../test/fakeJobSuite.ts';
import { jobOutcome, waitUntil } from '../../test/waits.ts';
import type { elasticJob } from './elasticJob.ts';
import { stopSignal } from './messages.ts';

describe('the job workflow with a fake Brain', () => {
  const suite = fakeJobSuite();

  /** Runs `story` on a job of nodes [1, 4] starting at 2, auto-scaled every second, served by `world`; then stops it. */
  const withJob = (title: string, world: FakeJobWorld, story: (handle: WorkflowHandle<typeof elasticJob>) => Promise<void>) => {
    const spec = jobSpec({ min: 1, max: 4, initial: 2, maxNodeRelaunches: 1 });
    spec.spec.autoScaling = { enabled: true, interval: 1000 };
    return suite.withJob(title, world, { spec }, async (handle) => {
      await story(handle);
      await handle.signal(stopSignal, { reason: 'story told' });
      expect((await jobOutcome(handle)).phase).toBe('STOPPED');
    });
  };
  const runningAt2 = async (world: FakeJobWorld, handle: WorkflowHandle) => {
    await waitUntil(() => world.launches.length >= 2, '2 nodes launched', 20_000, 50);
    world.registerAll();
    world.closeRound();
    await waitUntil(async () => (await suite.status(handle)).phase === 'RUNNING', 'the job RUNNING', 20_000, 50);
  };
  const roundOpenedFor = (world: FakeJobWorld, nodes: number) =>
    waitUntil(() => world.rounds.find((r) => r.targetNodes === nodes), `a round for ${nodes} nodes`, 20_000, 50);
  const keep: BrainPlan = { stage: 'running', rule: 'insufficient-data', reason: 'too few samples' };

  it('opens the round of a running plan with its optimizer and reason', async ({ task }) => {
    const world = new FakeJobWorld();
    world.brain = (input: OptimizeActivityInput) =>
      input.stage === 'running' && input.currentNodes === 2
        ? { stage: 'running', nodes: 3, rule: 'throughput-scales', reason: 'throughput rose 1.4× per node' }
        : input.stage === 'running' ? keep : { stage: 'initial', rule: 'no-history', reason: 'no similar jobs' };
    await withJob(task.name, world, async (handle) => {
      await runningAt2(world, handle);
      expect((await roundOpenedFor(world, 3)).cause).toBe('Brain plan (running optimizer: throughput rose 1.4× per node): scale to 3 nodes');
    });
  });

  it('offers an initial plan that came after the first round as a running plan, and scales by it', async ({ task }) => {
    const world = new FakeJobWorld();
    let brainUp = false;
    world.brain = (input: OptimizeActivityInput) => {
      if (!brainUp) return brainDown();
      return input.stage === 'initial' ? { stage: 'initial', nodes: 4, rule: 'history-median', reason: 'similar jobs ended at 4 nodes', resources: { memoryBytes: 2 ** 40, cpu: 1 } } : keep;
    };
    await withJob(task.name, world, async (handle) => {
      await runningAt2(world, handle);
      brainUp = true;
      expect((await roundOpenedFor(world, 4)).cause).toBe('Brain plan (initial optimizer: similar jobs ended at 4 nodes): scale to 4 nodes');
      const plans = (await suite.status(handle)).plans ?? [];
      expect(plans.filter((p) => p.stage === 'initial').map((p) => p.applied)).toEqual([
        'asked again once the Brain answered, after the first round: offered as a running plan: scale 2 → 4 nodes',
      ]);
      // Memory is left to OOM plans: the nodes it added start with the spec's.
      expect(world.launches.every((l) => l.resources === undefined)).toBe(true);
    });
  });

  it('stops at once while the Brain hangs on the initial plan, cancelling the call, with the reason the stop gave', async ({ task }) => {
    const world = new FakeJobWorld();
    world.holdBrain();
    const spec = jobSpec({ min: 1, max: 4, initial: 2, maxNodeRelaunches: 1 });
    await suite.withJob(task.name, world, { spec }, async (handle) => {
      await waitUntil(() => world.brainAsked.length === 1, 'the Brain asked for the initial plan', 20_000, 50);
      await handle.signal(stopSignal, { reason: 'no time for a slow Brain' });
      // Waiting out the Brain's tries (4 of 20 s each) would take over a minute.
      expect(await waitUntil(() => world.finished, 'the job finished', 5_000, 50)).toEqual({ phase: 'STOPPED', reason: 'no time for a slow Brain' });
      expect(await jobOutcome(handle)).toMatchObject({ phase: 'STOPPED', reason: 'no time for a slow Brain' });
      expect([world.brainAnswers, world.brainAsked.length, world.launches.length]).toEqual([0, 1, 0]);
      const history = await suite.bounded(handle, () => handle.fetchHistory());
      expect(history.events?.some((e) => e.activityTaskCancelRequestedEventAttributes), 'the Brain call cancelled').toBe(true);
    });
  });
});
