// Pre-flight node check end to end: real worker and API processes, four real agents, the example
// trainer, on the suite's Temporal dev server. The agents inherit ROVER_TEST_NODE_CHECK_NODES
// from the worker (local backend), which makes incarnation 0 of node 1 fail its check and of
// node 2 run slowly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { formatJobStatus } from '../cli/format.ts';
import { jobSpec } from './jobFixtures.ts';
import { jobOutcome } from './helpers.ts';
import { startTestStack, type TestStack } from './stack.ts';

describe('pre-flight node check on the local backend', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack('nodecheck', { ROVER_TEST_NODE_CHECK_NODES: '1:fail,2:slow' });
    await Promise.all([stack.startWorker(), stack.startApi()]);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('relaunches a node that fails its check outside the budget and excludes a slow one', async () => {
    const spec = jobSpec(stack.home, 'check', { nodes: 4, nproc: 1, steps: 20 });
    spec.spec.diagnosis = { nodeCheck: 'auto', probeBytes: 256 * 1024, timeout: 20_000, excludeStragglers: true, relaunchStragglers: false };
    const handle = await submitJob(stack.client, spec, { taskQueue: stack.config.temporal.taskQueue });
    const result = await jobOutcome(handle);
    expect(result.phase, result.reason ?? '').toBe('SUCCEEDED');
    expect(result.nodeRelaunches).toBe(0);
    const byId = new Map(result.nodes.map((n) => [n.id, n]));
    expect(byId.get(1)).toMatchObject({ incarnation: 1, status: 'succeeded', check: expect.stringMatching(/^ok /) });
    expect(byId.get(2)).toMatchObject({ incarnation: 0, status: 'stopped', check: expect.stringMatching(/^straggler /) });
    expect([0, 3].map((id) => byId.get(id)?.status)).toEqual(['succeeded', 'succeeded']);
    expect(result.targetNodes).toBe(3);
    expect(result.warnings.join('\n')).toMatch(/node 1 incarnation 0 failed the node check in both rounds: relaunched as incarnation 1/);
    expect(formatJobStatus(result)).toMatch(/CHECK/);

    const events = await stack.store.nodeEvents.list('check', { kinds: ['node_check', 'round_closed'] });
    const verdicts = events.filter((e) => e.kind === 'node_check' && (e.data as { verdict?: string }).verdict);
    expect(verdicts.find((e) => e.nodeId === 1 && e.incarnation === 0)?.data).toMatchObject({ verdict: 'faulty' });
    expect(verdicts.find((e) => e.nodeId === 2)?.data).toMatchObject({ verdict: 'straggler', exclude: true });
    // Node 1's faulty incarnation never trained: the first closed round came after its verdict.
    const faultyAt = verdicts.find((e) => e.nodeId === 1 && e.incarnation === 0)!.id;
    const firstClosed = events.find((e) => e.kind === 'round_closed');
    expect(firstClosed!.id).toBeGreaterThan(faultyAt);
    const members = (firstClosed!.data as { members: { node: number; incarnation: number }[] }).members;
    expect(members.some((m) => m.node === 1 && m.incarnation === 0)).toBe(false);
  }, 240_000);
});
