// Process failure reports on both store dialects: the API judges each against its round's
// culprit, charges only the culprit's node, and takes a charge back when a stronger failure of
// the same round is reported after its victim's.
import { expect, it } from 'vitest';
import { apiTestConfig } from './testConfig.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import type { Store } from '../store/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { buildApi } from './server.ts';

const RESET = 'Traceback (most recent call last):\n  File "train.py", line 9, in <module>\nConnectionResetError: [Errno 104] Connection reset by peer';
const BUG = 'Traceback (most recent call last):\n  File "train.py", line 9, in <module>\nValueError: bad shape';

async function setup(store: Store) {
  const parsed = parseJobSpec({ metadata: { name: 'fr', user: 'u' }, spec: { nodes: { min: 1, max: 3, initial: 3 }, entrypoint: { command: 'true' } } });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  await store.jobs.create({ id: 'fr', workflowId: 'job-fr', user: 'u', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: 't' });
  let now = 5_000_000;
  const app = await buildApi({ config: apiTestConfig({}), store, logger: createLogger('test', 'silent'), now: () => now });
  await app.ready();
  for (const nodeId of [0, 1, 2]) await store.nodes.upsertLaunch({ jobId: 'fr', nodeId, incarnation: 0, backend: 'local', status: 'running' });
  await store.rendezvous.openRound({ jobId: 'fr', round: 1, minNodes: 1, maxNodes: 3 });
  for (const nodeId of [0, 1, 2]) await store.rendezvous.join({ jobId: 'fr', round: 1, nodeId, incarnation: 0, host: 'h' });
  await store.rendezvous.closeRound({ jobId: 'fr', round: 1, ranks: [0, 1, 2].map((n) => ({ nodeId: n, rank: n })), masterAddr: 'h', masterPort: 1 });
  const report = async (node: number, failure: { exitCode: number | null; signal?: string; stderrTail?: string }, round = 1) => {
    const body = { node, incarnation: 0, kind: 'process_failed', round, restarts: 0, localRank: 0, signal: null, ...failure };
    const res = await app.inject({ method: 'POST', url: '/v1/jobs/fr/nodes/report', payload: body, headers: { authorization: 'Bearer t' } });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { charged: boolean; failures: number };
  };
  const charged = async () => Promise.all([0, 1, 2].map(async (nodeId) => (await store.nodes.get({ jobId: 'fr', nodeId, incarnation: 0 }))?.processRestarts));
  const events = async (kind: string) => (await store.nodeEvents.listAfter('fr', 0, 1000)).filter((e) => e.kind === kind);
  return { app, report, charged, events, advance: (ms: number) => (now += ms) };
}

describeEachStore('process failure reports', (h) => {
  it('charges the SIGKILLed culprit, not the peers that lost their connection to it, whatever the order', async () => {
    const { app, report, charged, events, advance } = await setup(await h.open());
    // A victim's report arrives first and is charged for now…
    expect(await report(1, { exitCode: 1, stderrTail: RESET })).toEqual({ charged: true, failures: 1 });
    advance(300);
    // …then the kill that explains it takes the charge over,
    expect(await report(0, { exitCode: null, signal: 'SIGKILL' })).toEqual({ charged: true, failures: 1 });
    advance(300);
    // and a later victim costs nothing, even with a traceback of its own.
    expect(await report(2, { exitCode: 1, stderrTail: BUG })).toEqual({ charged: false, failures: 0 });
    expect(await charged()).toEqual([1, 0, 0]);
    const failed = (await events('process_failed')).map((e) => [e.nodeId, (e.data as { role: string }).role, (e.data as { supersedes?: { node: number } }).supersedes?.node]);
    expect(failed).toEqual([[1, 'culprit', undefined], [0, 'culprit', 1], [2, 'consequence', undefined]]);
    expect((await events('round_opened')).length, 'one new round for the whole cascade').toBe(1);
    await app.close();
  });

  it('judges a failure past the window on its own', async () => {
    const { app, report, charged, events, advance } = await setup(await h.open());
    await report(0, { exitCode: null, signal: 'SIGKILL' });
    const [opened] = await events('round_opened');
    expect((opened?.data as { cause: string }).cause).toBe('process failed on node 0 (local rank 0, killed by SIGKILL)');
    advance(10_001);
    expect(await report(1, { exitCode: 1, stderrTail: RESET })).toEqual({ charged: true, failures: 1 });
    expect(await charged()).toEqual([1, 1, 0]);
    await app.close();
  });
});
