// The agent hot path reads O(1) rows per request, whatever the job's size: a poll reads its own
// member row, not the member list; the round policy runs once per change, not per poll; the hang
// check judges the job once per heartbeat interval, not per heartbeat, over one aggregate row.
// Counted on the real API and store by a kysely plugin that records the rows every SELECT returns.
import { SelectQueryNode, TableNode, type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs, type QueryResult, type RootOperationNode, type UnknownRow } from 'kysely';
import { expect, it } from 'vitest';
import { apiTestConfig } from './testConfig.ts';
import { emptyNodeCheckState } from '../common/nodeCheckSession.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { nodeToken } from '../common/tokens.ts';
import { describeEachStore } from '../store/testing.ts';
import { buildApi } from './server.ts';

/** Nodes in the job: any per-request scan of members or nodes reads this many rows. */
const N = 40;
/** Rows one agent request may read: its job, its node, the round, its member row, plus one. */
const MAX_ROWS = 5;
/** The key node tokens are signed with. */
const OPERATOR = 'operator-secret-for-tests-0123456789';

/** Counts the rows each SELECT returns, by table. */
class RowCounter implements KyselyPlugin {
  private readonly tables = new WeakMap<object, string>();
  reads: { table: string; rows: number }[] = [];

  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    const from = SelectQueryNode.is(node) ? node.from?.froms[0] : undefined;
    if (from && TableNode.is(from)) this.tables.set(queryId, from.table.identifier.name);
    return node;
  }

  async transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const table = this.tables.get(queryId);
    if (table) this.reads.push({ table, rows: result.rows.length });
    return result;
  }

  /** Rows read while fn ran: in all, and from one table; and the SELECTs of one table. */
  async during<T>(fn: () => Promise<T>): Promise<{ value: T; rows: number; rowsOf: (table: string) => number; queriesOf: (table: string) => number }> {
    this.reads = [];
    const value = await fn();
    const reads = this.reads;
    const sum = (table?: string) => reads.filter((r) => !table || r.table === table).reduce((n, r) => n + r.rows, 0);
    return { value, rows: sum(), rowsOf: sum, queriesOf: (table) => reads.filter((r) => r.table === table).length };
  }
}

describeEachStore('the agent hot path', (h) => {
  async function setup(nodeCheck: 'on' | 'off' = 'off') {
    const clock = { now: 1_000_000 };
    const counter = new RowCounter();
    const store = await h.open({ now: () => clock.now, plugins: [counter] });
    const parsed = parseJobSpec({
      metadata: { name: 'big', user: 'u' },
      spec: {
        nodes: { min: N },
        entrypoint: { command: 'true' },
        faultTolerance: { heartbeatInterval: '5s', hangTimeout: '1m', startupTimeout: '1h', hangAction: 'log' },
        diagnosis: { nodeCheck },
      },
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    await store.jobs.create({ id: 'big', workflowId: 'job-big', user: 'u', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: 't' });
    await store.transaction(async (tx) => {
      for (let nodeId = 0; nodeId < N; nodeId++) await tx.nodes.upsertLaunch({ jobId: 'big', nodeId, incarnation: 0, backend: 'local', status: 'launching' });
    });
    const app = await buildApi({ config: apiTestConfig({ ROVER_OPERATOR_TOKEN: OPERATOR }), store, logger: createLogger('test', 'silent'), now: () => clock.now });
    await app.ready();
    const call = async (method: 'GET' | 'POST', url: string, body?: object) => {
      const res = await app.inject({ method, url: `/v1/jobs/big/${url}`, payload: body, headers: { authorization: 'Bearer t' } });
      expect(res.statusCode, res.body).toBe(200);
      return res.json();
    };
    const node = (n: number) => ({ node: n, incarnation: 0 });
    const register = async (n: number) => call('POST', 'nodes/register', { ...node(n), pid: 100 + n, host: `h${n}` });
    const join = async (n: number) => call('POST', 'rendezvous/join', { ...node(n), host: `h${n}`, freePort: 29_500 + n });
    const poll = async (n: number, round = 1) => call('GET', `rendezvous/${round}?node=${n}&incarnation=0`);
    const heartbeat = async (n: number, round = 1) => call('POST', 'nodes/heartbeat', { ...node(n), round, step: null, processes: [{ localRank: 0, pid: 100 + n, cpuPercent: 50, rssBytes: 1e9 }] });
    return { app, store, clock, counter, register, join, poll, heartbeat };
  }

  it('polls of an open round read the round row, and the join that fills it closes it', async () => {
    const { app, store, clock, counter, register, join, poll } = await setup();
    for (let n = 0; n < N; n++) await register(n);
    for (let n = 0; n < N - 1; n++) await join(n);
    clock.now += 1000;
    for (const n of [0, 17, N - 2]) {
      const read = await counter.during(() => poll(n));
      expect(read.value).toEqual({ status: 'open', round: 1 });
      expect(read.rows).toBeLessThanOrEqual(MAX_ROWS);
    }
    // The join that fills the round decides it, before anyone polls.
    await join(N - 1);
    expect((await store.rendezvous.getRound({ jobId: 'big', round: 1 }))?.status).toBe('closed');
    const read = await counter.during(() => poll(N - 1));
    expect(read.value).toMatchObject({ status: 'closed', groupRank: N - 1, nodes: N });
    expect(read.rowsOf('rendezvous_members')).toBe(1);
    expect(read.rows).toBeLessThanOrEqual(MAX_ROWS);
    await app.close();
  });

  it('a poll of a closed round and a heartbeat read their own member row, never the member list', async () => {
    const { app, counter, register, join, poll, heartbeat } = await setup();
    for (let n = 0; n < N; n++) await register(n);
    for (let n = 0; n < N; n++) await join(n);
    for (const n of [0, 1, 23, N - 1]) {
      const polled = await counter.during(() => poll(n));
      expect(polled.value).toMatchObject({ status: 'closed', round: 1, groupRank: n, nodes: N, masterAddr: 'h0', masterPort: 29_500 });
      expect(polled.rowsOf('rendezvous_members')).toBe(1);
      expect(polled.rows).toBeLessThanOrEqual(MAX_ROWS);
      // A heartbeat from before the round (round 0) asks whether the new round wants this node.
      for (const round of [0, 1]) {
        const beat = await counter.during(() => heartbeat(n, round));
        expect(beat.value).toEqual(round === 0 ? { action: 'restart', round: 1 } : { action: 'none' });
        expect(beat.rowsOf('rendezvous_members')).toBeLessThanOrEqual(1);
        expect(beat.rows).toBeLessThanOrEqual(MAX_ROWS);
      }
    }
    await app.close();
  });

  it('a heartbeat under a node check reads the short list of wanted partners, and flags the one wanted', async () => {
    const { app, store, counter, register, join, heartbeat } = await setup('on');
    for (let n = 0; n < N; n++) await register(n);
    for (let n = 0; n < N; n++) await join(n);
    // A relaunched node's check session wants node 5, which passed, as its peer.
    const { tokenDigest } = (await store.jobs.get('big'))!;
    await store.nodeChecks.compareAndSet('big', 0, { tokenDigest, state: emptyNodeCheckState(), partnersWanted: ['5/0'] });
    for (const n of [4, 5]) {
      const beat = await counter.during(() => heartbeat(n));
      expect(beat.value).toEqual(n === 5 ? { action: 'none', nodeCheck: true } : { action: 'none' });
      expect(beat.rowsOf('node_checks')).toBe(1);
      expect(beat.rows).toBeLessThanOrEqual(MAX_ROWS);
    }
    await app.close();
  });

  it('heartbeats arriving together share one read of the job, its round and its nodes, and each gets its own answer', async () => {
    const { app, store, clock, counter, register, join } = await setup();
    for (let n = 0; n < N; n++) await register(n);
    for (let n = 0; n < N; n++) await join(n);
    clock.now += 1000;
    const beat = (body: object, token = 't') =>
      app.inject({ method: 'POST', url: '/v1/jobs/big/nodes/heartbeat', payload: body, headers: { authorization: `Bearer ${token}` } });
    const good = (n: number) => ({ node: n, incarnation: 0, round: 1, step: 7, processes: [] });
    const read = await counter.during(() =>
      Promise.all([
        ...Array.from({ length: N }, (_, n) => beat(good(n))),
        beat(good(0), 'wrong'),
        beat({ node: 1, incarnation: 0, round: 'one' }),
        beat(good(N + 5)),
      ]),
    );
    const codes = read.value.map((r) => r.statusCode);
    expect(codes.slice(0, N)).toEqual(Array.from({ length: N }, () => 200));
    expect(codes.slice(N)).toEqual([403, 400, 404]);
    expect(read.value[N + 1]!.json().message).toContain('body.round');
    // One batch (or a few): not one read per heartbeat.
    expect(read.rowsOf('jobs')).toBeLessThan(N / 4);
    expect(read.rowsOf('rendezvous_rounds')).toBeLessThan(N / 4);
    const nodes = await store.nodes.listByJob('big');
    expect(nodes.every((n) => n.lastHeartbeatAt === clock.now && n.step === 7)).toBe(true);
    await app.close();
  });

  it('polls of a closed round arriving together read their member rows in one query, and each gets its own rank', async () => {
    const { app, counter, register, join, poll } = await setup();
    for (let n = 0; n < N; n++) await register(n);
    for (let n = 0; n < N; n++) await join(n);
    const read = await counter.during(() => Promise.all(Array.from({ length: N }, (_, n) => poll(n))));
    expect(read.value.map((s) => [s.status, s.groupRank, s.nodes])).toEqual(Array.from({ length: N }, (_, n) => ['closed', n, N]));
    // Each member row once, not the member list per poll; a few queries, not one per poll.
    expect(read.rowsOf('rendezvous_members')).toBe(N);
    expect(read.queriesOf('rendezvous_members')).toBeLessThan(N / 4);
    expect(read.queriesOf('jobs')).toBeLessThan(N / 4);
    await app.close();
  });

  it("trainers' requests arriving together share the reads of the job and of their nodes' member rows, and a rank outside its node is still refused", async () => {
    const { app, store, register, join, counter } = await setup();
    for (let n = 0; n < N; n++) await register(n);
    for (let n = 0; n < N; n++) await join(n);
    const { tokenDigest } = (await store.jobs.get('big'))!;
    const step = (n: number, rank: number) =>
      app.inject({
        method: 'POST',
        url: '/v1/jobs/big/trainers/step',
        payload: { node: n, incarnation: 0, rank, round: 1, step: 3, metrics: {} },
        headers: { authorization: `Bearer ${nodeToken(OPERATOR, tokenDigest, { node: n, incarnation: 0 })}` },
      });
    const read = await counter.during(() => Promise.all([...Array.from({ length: N }, (_, n) => step(n, n)), step(1, 0)]));
    expect(read.value.map((r) => r.statusCode)).toEqual([...Array.from({ length: N }, () => 200), 403]);
    expect(read.value[N]!.json().message).toContain('cannot act as rank 0 in round 1');
    expect(read.queriesOf('jobs')).toBeLessThan(N / 4);
    expect(read.queriesOf('rendezvous_members')).toBeLessThan(N / 4);
    await app.close();
  });

  it('scans an idle job for a hang once per heartbeat interval, not on every heartbeat', async () => {
    const { app, store, clock, counter, register, join, heartbeat } = await setup();
    for (let n = 0; n < N; n++) await register(n);
    for (let n = 0; n < N; n++) await join(n);
    // Past hangTimeout since the groups started, within startupTimeout: idle, not hung.
    clock.now += 2 * 60_000;
    const scans = async () => {
      let scanning = 0;
      for (let n = 0; n < N; n++) {
        const beat = await counter.during(() => heartbeat(n));
        expect(beat.value).toEqual({ action: 'none' });
        // Even the beat that judges the job reads O(1) rows: the running nodes' aggregate.
        expect(beat.rows).toBeLessThanOrEqual(MAX_ROWS);
        // Its own row is one read of nodes; the judgement is another.
        if (beat.queriesOf('nodes') > 1) scanning++;
      }
      return scanning;
    };
    // One interval: all N nodes beat, one of them scans.
    expect(await scans()).toBe(1);
    clock.now += 1000;
    expect(await scans()).toBe(0);
    // The next interval scans again, once.
    clock.now += 5000;
    expect(await scans()).toBe(1);
    expect((await store.jobs.get('big'))?.hangCheckedAt).toBe(clock.now);
    await app.close();
  });

  it('still finds a hang with the scan claimed once per interval, and every node is asked for evidence', async () => {
    const { app, store, clock, register, join, heartbeat } = await setup();
    for (let n = 0; n < N; n++) await register(n);
    for (let n = 0; n < N; n++) await join(n);
    clock.now += 2 * 3_600_000;
    const replies = [];
    for (let n = 0; n < N; n++) replies.push(await heartbeat(n));
    const hangs = await store.nodeEvents.list('big', { kinds: ['hang_suspected'] });
    expect(hangs).toHaveLength(1);
    expect(replies).toEqual(Array.from({ length: N }, () => ({ action: 'none', captureStacks: hangs[0]!.id })));
    await app.close();
  });
});
