// The pre-flight node check through the store: two coordinators (on two connections on MySQL)
// stand for two API replicas. Agents' polls go to either, at once; the check runs one session,
// counts each result once and gives each node one verdict.
import { expect, it } from 'vitest';
import type { NodeCheckRequest, NodeCheckResponse } from '../common/nodeCheckProtocol.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { NodeCheckCoordinator } from './nodeCheck.ts';

/** Node n's exchange-server pairing secret (32 hex characters). */
const secretOf = (node: number) => node.toString(16).padStart(2, '0').repeat(16);

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
    const poll = (node: number, turn: number, result?: NodeCheckRequest['result']) =>
      replicas[(node + turn) % 2]!.poll(job, { node, incarnation: 0, host: '127.0.0.1', port: 9000 + node, secret: secretOf(node), ...(result && { result }) });
    return { store: store!, poll };
  }

  it('runs one session whichever replica each poll reaches, and judges the node that failed twice faulty', async () => {
    const { store, poll } = await setup();
    const nodes = [0, 1, 2, 3];
    await Promise.all(nodes.map((n) => poll(n, 0)));
    // The last announce completed the set: later polls see the session.
    let answers: NodeCheckResponse[] = await Promise.all(nodes.map((n) => poll(n, 1)));
    for (const round of [1, 2]) {
      expect(answers.map((a) => a.action)).toEqual(['probe', 'probe', 'probe', 'probe']);
      expect(answers.every((a) => a.action === 'probe' && a.round === round)).toBe(true);
      // Each peer comes with its own server's pairing secret, the one it announced.
      for (const a of answers) if (a.action === 'probe') for (const p of a.peers) expect(p).toMatchObject({ port: 9000 + p.node, secret: secretOf(p.node) });
      // Every node reports to both replicas at once: a repeat must not count twice.
      const report = (n: number, turn: number) => poll(n, turn, { round, ok: n !== 1, seconds: 0.1 });
      await Promise.all(nodes.flatMap((n) => [report(n, 0), report(n, 1)]));
      if (round === 1) answers = await Promise.all(nodes.map((n) => poll(n, round)));
    }
    const final = await Promise.all(nodes.map((n) => poll(n, 0)));
    expect(final).toEqual(nodes.map((n) => ({ action: 'done', verdict: n === 1 ? 'faulty' : 'ok', hold: n === 1 })));
    const events = await store.nodeEvents.list('check', { kinds: ['node_check'] });
    const verdicts = events.filter((e) => 'verdict' in (e.data as object));
    expect(verdicts.map((e) => [e.nodeId, (e.data as { verdict: string }).verdict])).toEqual([[0, 'ok'], [1, 'faulty'], [2, 'ok'], [3, 'ok']]);
    const results = events.filter((e) => 'round' in (e.data as object)).map((e) => `${e.nodeId}@${(e.data as { round: number }).round}`);
    expect(results.sort()).toEqual(['0@1', '0@2', '1@1', '1@2', '2@1', '2@2', '3@1', '3@2']);
  });
});
