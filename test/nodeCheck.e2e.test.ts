// Pre-flight node check end to end: real worker and API processes, four real agents, the example
// trainer, on the suite's Temporal dev server. The agents inherit ROVER_TEST_NODE_CHECK_NODES
// from the worker (local backend), which makes incarnation 0 of node 1 fail its check and of
// node 2 run slowly. Every node's exchange server lives only while it takes part in a session:
// sampled from the check state while the job runs, each is closed (ECONNREFUSED) once its part
// ended, the relaunched node's partner included, while their agents still train.
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { formatJobStatus } from '../cli/format.ts';
import { jobSpec } from './jobFixtures.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { startTestStack, type TestStack } from './stack.ts';

/** Whether nothing listens on 127.0.0.1:port any more. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

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
    const spec = jobSpec(stack.home, 'check', { nodes: 4, nproc: 1, steps: 60 });
    spec.spec.diagnosis = { nodeCheck: 'auto', probeBytes: 256 * 1024, timeout: 20_000, excludeStragglers: true, relaunchStragglers: false };
    const handle = await submitJob(stack.client, spec, { taskQueue: stack.config.temporal.taskQueue });

    // Every exchange server a node registered for a round, by session: `session/node/port`.
    const servers = new Set<string>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const session = (await stack.store.nodeChecks.get('check'))?.state.session;
        for (const [node, s] of Object.entries(session?.servers ?? {})) servers.add(`${session!.id}/${node}/${s.port}`);
        await sleep(10);
      }
    })();
    try {
      // The relaunched node 1 passes its check, paired with a node that passed earlier.
      await waitUntil(async () => {
        const events = await stack.store.nodeEvents.list('check', { kinds: ['node_check'] });
        return events.some((e) => e.nodeId === 1 && e.incarnation === 1 && 'verdict' in (e.data as object));
      }, "the relaunched node's verdict", 180_000, 50);
    } finally {
      sampling = false;
      await sampler;
    }
    const registered = [...servers].map((k) => k.split('/').map(Number) as [number, number, number]);
    expect(new Set(registered.filter(([session]) => session === 1).map(([, node]) => node))).toEqual(new Set([0, 1, 2, 3]));
    const partners = registered.filter(([session, node]) => session === 2 && node !== 1).map(([, node]) => node);
    expect(partners.length, `session 2 servers: ${JSON.stringify(registered)}`).toBeGreaterThan(0);
    // Each of them closes once its part ended; the partners train on meanwhile.
    for (const [session, node, port] of registered) {
      await waitUntil(() => refused(port), `session ${session} node ${node}'s exchange server on port ${port} to close`, 5_000, 50);
    }
    for (const node of partners) expect((await stack.store.nodes.get({ jobId: 'check', nodeId: node, incarnation: 0 }))?.status).toBe('running');

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
