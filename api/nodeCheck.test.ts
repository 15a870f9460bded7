// The pre-flight node check through the store: two coordinators (on two connections on MySQL)
// stand for two API replicas. Agents' polls go to either, at once; the check runs one session,
// counts each result once and gives each node one verdict; the partner a relaunched node's session
// needs is readable without the state (wantsPeer).
import { expect, it } from 'vitest';
import type { NodeCheckRequest, NodeCheckResponse } from '../common/nodeCheckProtocol.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { NodeCheckCoordinator } from './nodeCheck.ts';

/** Node n's pairing secret for a round (32 hex characters). */
const secretOf = (node: number, round: number) => (node * 4 + round).toString(16).padStart(2, '0').repeat(16);

describeEachStore('node check across API replicas', (h) => {
  async function setup() {
    const url = await h.freshUrl();
    const clock = { now: 1_000_000 };
    const first = await h.open({ url, now: () => clock.now });
    // better-sqlite3 blocks its process while it waits for a lock, so two SQLite connections in
    // one process would wait on each other: replicas in one test process share the connection.
    const stores = [first, h.dialect === 'sqlite' ? first : await h.open({ url, now: () => clock.now })];
    const parsed = parseJobSpec({
      metadata: { name: 'check', user: 'u' },
      spec: { nodes: { min: 2, max: 4 }, entrypoint: { command: 'true' }, diagnosis: { nodeCheck: 'on', timeout: '20s' } },
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const [store] = stores;
    await store!.jobs.create({ id: 'check', workflowId: 'job-check', user: 'u', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: 't' });
    for (let node = 0; node < 4; node++) await store!.nodes.upsertLaunch({ jobId: 'check', nodeId: node, incarnation: 0, backend: 'local', status: 'running' });
    const job = (await store!.jobs.get('check'))!;
    const replicas = stores.map((s) => new NodeCheckCoordinator(s, () => clock.now));
    /** Node n's poll, through replica (n + turn) % 2. */
    const poll = (node: number, turn: number, extra: Partial<NodeCheckRequest> = {}, incarnation = 0) =>
      replicas[(node + turn) % 2]!.poll(job, { node, incarnation, host: '127.0.0.1', ...extra });
    const serving = (node: number, session: number, round: number) => ({ serving: { session, round, port: 9000 + node, secret: secretOf(node, round) } });
    return { store: store!, job, replicas, poll, serving };
  }

  it('runs one session whichever replica each poll reaches, and judges the node that failed twice faulty', async () => {
    const { store, job, replicas, poll, serving } = await setup();
    const nodes = [0, 1, 2, 3];
    await Promise.all(nodes.map((n) => poll(n, 0)));
    for (const round of [1, 2]) {
      // The last announce completed the set (the last report, the round): each member serves it.
      expect(await Promise.all(nodes.map((n) => poll(n, 1)))).toEqual(nodes.map(() => ({ action: 'serve', session: 1, round })));
      // Each registers its round's server through both replicas at once: the first counts.
      await Promise.all(nodes.flatMap((n) => [poll(n, 0, serving(n, 1, round)), poll(n, 1, serving(n, 1, round))]));
      const answers: NodeCheckResponse[] = await Promise.all(nodes.map((n) => poll(n, round, serving(n, 1, round))));
      expect(answers.every((a) => a.action === 'probe' && a.round === round)).toBe(true);
      // Each peer comes with its server for this round and this round's pairing secret.
      for (const a of answers) if (a.action === 'probe') for (const p of a.peers) expect(p).toMatchObject({ port: 9000 + p.node, secret: secretOf(p.node, round) });
      // Every node reports to both replicas at once: a repeat must not count twice.
      const report = (n: number, turn: number) => poll(n, turn, { result: { round, ok: n !== 1, seconds: 0.1 } });
      await Promise.all(nodes.flatMap((n) => [report(n, 0), report(n, 1)]));
    }
    const final = await Promise.all(nodes.map((n) => poll(n, 0)));
    expect(final).toEqual(nodes.map((n) => ({ action: 'done', verdict: n === 1 ? 'faulty' : 'ok', hold: n === 1 })));
    const events = await store.nodeEvents.list('check', { kinds: ['node_check'] });
    const verdicts = events.filter((e) => 'verdict' in (e.data as object));
    expect(verdicts.map((e) => [e.nodeId, (e.data as { verdict: string }).verdict])).toEqual([[0, 'ok'], [1, 'faulty'], [2, 'ok'], [3, 'ok']]);
    const results = events.filter((e) => 'round' in (e.data as object)).map((e) => `${e.nodeId}@${(e.data as { round: number }).round}`);
    expect(results.sort()).toEqual(['0@1', '0@2', '1@1', '1@2', '2@1', '2@2', '3@1', '3@2']);

    // Node 1 is relaunched: its lone session wants node 0, which passed, as its round-1 peer.
    await store.nodes.upsertLaunch({ jobId: 'check', nodeId: 1, incarnation: 1, backend: 'local', status: 'running' });
    expect(await replicas[1]!.wantsPeer(job, 0, 0)).toBe(false);
    expect(await poll(1, 0, {}, 1)).toEqual({ action: 'serve', session: 2, round: 1 });
    expect(await Promise.all([[0, 0], [2, 0], [0, 1]].map(([n, i]) => replicas[0]!.wantsPeer(job, n!, i!)))).toEqual([true, false, false]);
    expect(await poll(0, 1)).toEqual({ action: 'serve', session: 2, round: 1 });
  });
});
