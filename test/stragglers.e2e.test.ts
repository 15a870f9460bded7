// Straggler detection while training, end to end: real worker and API processes, three real
// agents, the example trainer on the suite's Temporal dev server. Rank 2 computes 6× slower than
// the others (--slow-rank/--slow-factor); its node's `compute=` figures stand out from the job's
// median, the API appends straggler_detected and the job relaunches that node
// (spec.diagnosis.relaunchStragglers).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { jobSpec } from './jobFixtures.ts';
import { jobOutcome } from './helpers.ts';
import { startTestStack, type TestStack } from './stack.ts';

describe('straggler detection while training on the local backend', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack('stragglers');
    await Promise.all([stack.startWorker(), stack.startApi()]);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('reports the slow node and relaunches it as its next incarnation', async () => {
    // One relaunch: should the new incarnation get the slow rank again, it is only reported.
    const spec = jobSpec(stack.home, 'straggle', {
      nodes: 3,
      nproc: 1,
      steps: 60,
      maxNodeRelaunches: 1,
      extraArgs: ['--slow-rank', '2', '--slow-factor', '6'],
    });
    spec.spec.diagnosis = { ...spec.spec.diagnosis, nodeCheck: 'off', relaunchStragglers: true };
    const handle = await submitJob(stack.client, spec, { taskQueue: stack.config.temporal.taskQueue });
    const result = await jobOutcome(handle);

    const events = await stack.store.nodeEvents.list('straggle', { kinds: ['straggler_detected'] });
    const first = events[0];
    expect(first).toMatchObject({ nodeId: 2, incarnation: 0, source: 'api' });
    const data = first!.data as { seconds: number; medianSeconds: number; relaunch: boolean };
    expect(data.relaunch).toBe(true);
    expect(data.seconds).toBeGreaterThan(2 * data.medianSeconds);
    expect(result.phase).toBe('SUCCEEDED');
    expect(result.nodeRelaunches).toBe(1);
    expect(result.nodes.find((n) => n.id === 2)).toMatchObject({ incarnation: 1, status: 'succeeded' });
    expect(result.warnings.join('\n')).toMatch(/node 2 incarnation 0 is a straggler: step compute .* relaunched as incarnation 1/);
  }, 240_000);
});
