// Waiting instead of polling, over real HTTP and a real store: the round-status long poll answers
// when another client's join closes the round (on this replica or another), 'open' once its wait
// runs out, and stops when its client goes; above the in-flight limit the API answers 429 with
// Retry-After, and the agent's client waits that long and then succeeds. A heartbeat is held the
// same way until a newer round opens.
import { request as httpRequest, type ClientRequest } from 'node:http';
import { afterEach, expect, it } from 'vitest';
import { HttpApiClient, withRetry } from '../agent/apiClient.ts';
import { waitUntil } from '../test/waits.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import type { RoundStatus } from '../common/protocol.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import type { Store } from '../store/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { LongPolls, POLL_MAX_MS } from './longPoll.ts';
import { buildApi } from './server.ts';

const TOKEN = 'long-poll-test-token';
const JOB = 'lp';

async function seedJob(store: Store, nodes: number): Promise<void> {
  const parsed = parseJobSpec({
    metadata: { name: JOB, user: 'u' },
    spec: { nodes: { min: nodes, max: nodes }, entrypoint: { command: 'true' }, diagnosis: { nodeCheck: 'off' }, rendezvous: { joinTimeout: '1h' } },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  await store.jobs.create({ id: JOB, workflowId: `job-${JOB}`, user: 'u', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: TOKEN });
  for (let nodeId = 0; nodeId < nodes; nodeId++) await store.nodes.upsertLaunch({ jobId: JOB, nodeId, incarnation: 0, backend: 'local', status: 'launching' });
}

describeEachStore('waiting instead of polling', (h) => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A listening API replica on `store`, with its long polls and the agent's client of node `node`. */
  async function replica(store: Store, env: Record<string, string> = {}) {
    const polls = new LongPolls();
    const app = await buildApi({ config: loadConfig(env), store, logger: createLogger('test', 'silent'), polls });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    closers.push(() => app.close());
    const client = (node: number) => new HttpApiClient({ baseUrls: [url], job: JOB, token: TOKEN, start: node });
    return { app, url, polls, client };
  }

  /** Registers and joins node `node` through `client`; returns the round. */
  async function join(client: HttpApiClient, node: number): Promise<number> {
    const host = `10.0.0.${node}`;
    await client.register({ node, incarnation: 0, pid: 1000 + node, host });
    return (await client.join({ node, incarnation: 0, host, freePort: 20_000 + node })).round;
  }

  it('answers a long poll as soon as another agent\'s join closes the round, and open after waitMs otherwise', async () => {
    const store = await h.open();
    await seedJob(store, 2);
    const api = await replica(store);
    const round = await join(api.client(0), 0);
    // Nobody else joins: 'open' once the wait ran out, not before.
    let started = Date.now();
    expect(await api.client(0).roundStatus(round, { node: 0, incarnation: 0 }, undefined, 400)).toEqual({ status: 'open', round });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);

    started = Date.now();
    const polled = api.client(0).roundStatus(round, { node: 0, incarnation: 0 }, undefined, 20_000);
    await waitUntil(() => api.polls.size === 1, 'the long poll to wait', 5000);
    await join(api.client(1), 1);
    const status = (await polled) as Extract<RoundStatus, { status: 'closed' }>;
    expect(status).toMatchObject({ status: 'closed', round, nodes: 2 });
    // The join decided the round here and woke the poll: far sooner than its 20 s.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(api.polls.size).toBe(0);
  });

  it('holds a heartbeat until a peer\'s process failure opens the next round, then answers restart; none after waitMs otherwise', async () => {
    const store = await h.open();
    await seedJob(store, 2);
    const api = await replica(store);
    const round = await join(api.client(0), 0);
    await join(api.client(1), 1);
    expect(await api.client(0).roundStatus(round, { node: 0, incarnation: 0 })).toMatchObject({ status: 'closed', round });
    const beat = (waitMs: number) => api.client(0).heartbeat({ node: 0, incarnation: 0, round, step: 3, processes: [], waitMs });
    // Nothing happens: 'none' once the wait ran out, not before, and the beat was recorded on arrival.
    let started = Date.now();
    expect((await beat(400)).action).toBe('none');
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect((await store.nodes.get({ jobId: JOB, nodeId: 0, incarnation: 0 }))?.step).toBe(3);

    started = Date.now();
    const held = beat(20_000);
    await waitUntil(() => api.polls.size === 1, 'the heartbeat to be held', 5000);
    await api.client(1).report({ node: 1, incarnation: 0, round, restarts: 0, kind: 'process_failed', localRank: 0, exitCode: null, signal: 'SIGKILL', exitedAt: Date.now() });
    expect(await held).toMatchObject({ action: 'restart', round: round + 1 });
    // The report opened the round here and woke the heartbeat: far sooner than its 20 s.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(api.polls.size).toBe(0);
  });

  it('hears of a join on another replica by re-reading the store, within a poll interval or so', async () => {
    const url = await h.freshUrl();
    const [storeA, storeB] = [await h.open({ url }), await h.open({ url })];
    await seedJob(storeA, 2);
    const [a, b] = [await replica(storeA), await replica(storeB)];
    const round = await join(a.client(0), 0);
    const polled = a.client(0).roundStatus(round, { node: 0, incarnation: 0 }, undefined, 20_000);
    await waitUntil(() => a.polls.size === 1, 'the long poll to wait on replica A', 5000);
    const joined = Date.now();
    await join(b.client(1), 1);
    expect(await polled).toMatchObject({ status: 'closed', round, nodes: 2 });
    expect(Date.now() - joined).toBeLessThan(POLL_MAX_MS + 4000);
  });

  it('stops waiting when its client goes: no waiter or timer is left, the in-flight slot is free, and the server closes at once', async () => {
    const store = await h.open();
    await seedJob(store, 2);
    // One request in flight at most: a poll that leaked its slot would make the next request a 429.
    const api = await replica(store, { ROVER_API_MAX_IN_FLIGHT: '1' });
    const round = await join(api.client(0), 0);
    const abort = new AbortController();
    const polled = api.client(0).roundStatus(round, { node: 0, incarnation: 0 }, abort.signal, 20_000).catch((err: unknown) => err);
    await waitUntil(() => api.polls.size === 1, 'the long poll to wait', 5000);
    // While it waits it does not count: another request is served.
    expect((await api.client(0).heartbeat({ node: 0, incarnation: 0, round, step: null, processes: [] })).action).toBe('none');
    abort.abort();
    expect(await polled).toMatchObject({ name: 'AbortError' });
    await waitUntil(() => api.polls.size === 0, 'the long poll to end', 5000);
    expect((await api.client(0).heartbeat({ node: 0, incarnation: 0, round, step: null, processes: [] })).action).toBe('none');
    const closing = Date.now();
    await api.app.close();
    expect(Date.now() - closing).toBeLessThan(2000);
  });

  it('ends a waiting long poll with the round\'s current answer when the server closes', async () => {
    const store = await h.open();
    await seedJob(store, 2);
    const api = await replica(store);
    const round = await join(api.client(0), 0);
    const polled = api.client(0).roundStatus(round, { node: 0, incarnation: 0 }, undefined, 20_000);
    await waitUntil(() => api.polls.size === 1, 'the long poll to wait', 5000);
    const closing = Date.now();
    await api.app.close();
    expect(await polled).toEqual({ status: 'open', round });
    expect(Date.now() - closing).toBeLessThan(2000);
  });

  it('answers 429 with Retry-After above the in-flight limit, and the agent\'s client retries after it and succeeds', async () => {
    const store = await h.open();
    await seedJob(store, 2);
    const api = await replica(store, { ROVER_API_MAX_IN_FLIGHT: '1' });
    await join(api.client(0), 0);
    // A request in flight: its headers arrived, its body is still coming.
    const held = slowRequest(api.url, '/v1/jobs/lp/nodes/register', { node: 1, incarnation: 0, pid: 1001, host: '10.0.0.1' });
    await new Promise((r) => setTimeout(r, 200));
    const refused = await fetch(`${api.url}/v1/jobs/${JOB}/nodes/heartbeat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ node: 0, incarnation: 0, round: 1, step: null, processes: [] }),
    });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toMatchObject({ error: 'overloaded', message: expect.stringContaining('ROVER_API_MAX_IN_FLIGHT') });
    // Health and metrics are never shed.
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);

    const delays: number[] = [];
    const started = Date.now();
    const reply = await withRetry(() => api.client(0).heartbeat({ node: 0, incarnation: 0, round: 1, step: null, processes: [] }), {
      onRetry: (_err, _attempt, delayMs) => {
        delays.push(delayMs);
        held.finish(); // the slow request ends while the client waits
      },
    });
    expect(reply.action).toBe('none');
    expect(delays.length).toBeGreaterThanOrEqual(1);
    // Retry-After: 1 → at least a second, jittered up to two.
    expect(delays[0]).toBeGreaterThanOrEqual(1000);
    expect(delays[0]).toBeLessThan(2000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(await held.status).toBe(200);
  });

  // SQLite only: there a beat's own reads run to their end at once, so what it waits on is the
  // batch; on MySQL each read awaits the network and counts, which is where its queue forms.
  it.skipIf(h.dialect !== 'sqlite')("counts heartbeats queued for their job's batch as waiting, not in flight: a burst of them is not shed", async () => {
    const store = await h.open();
    await seedJob(store, 16);
    // Half of 2 for the heartbeat route: one beat doing its own work at a time, the rest batched.
    const api = await replica(store, { ROVER_API_MAX_IN_FLIGHT: '2' });
    const beat = (node: number) =>
      fetch(`${api.url}/v1/jobs/${JOB}/nodes/heartbeat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ node, incarnation: 0, round: 0, step: node, processes: [] }),
      }).then((r) => r.status);
    const statuses = await Promise.all(Array.from({ length: 16 }, (_, node) => beat(node)));
    expect(statuses).toEqual(Array.from({ length: 16 }, () => 200));
    const steps = await Promise.all(Array.from({ length: 16 }, (_, nodeId) => store.nodes.get({ jobId: JOB, nodeId, incarnation: 0 })));
    expect(steps.map((n) => n?.step)).toEqual(Array.from({ length: 16 }, (_, node) => node));
  });

  it('does no work for a request whose client went before it was served, and frees its slot', async () => {
    const store = await h.open();
    await seedJob(store, 2);
    const api = await replica(store, { ROVER_API_MAX_IN_FLIGHT: '1' });
    await join(api.client(0), 0);
    const held = slowRequest(api.url, '/v1/jobs/lp/rendezvous/join', { node: 1, incarnation: 0, host: '10.0.0.1', freePort: 20_001 });
    await new Promise((r) => setTimeout(r, 200));
    held.abandon();
    // The slot comes back: a request is served again.
    await waitUntil(async () => (await api.client(0).heartbeat({ node: 0, incarnation: 0, round: 1, step: null, processes: [] }).catch(() => undefined))?.action === 'none', 'a request to be served', 5000);
    // Node 1 never joined: the round still waits for it.
    expect((await store.rendezvous.getRound({ jobId: JOB, round: 1 }))?.memberCount).toBe(1);
  });
});

/**
 * A POST whose headers and half of whose body are sent now: the API counts it in flight. `finish`
 * sends the rest; `abandon` closes the connection instead.
 */
function slowRequest(base: string, path: string, body: object) {
  const text = JSON.stringify(body);
  const half = Math.floor(text.length / 2);
  let req: ClientRequest;
  const status = new Promise<number>((resolve, reject) => {
    req = httpRequest(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.write(text.slice(0, half));
  });
  status.catch(() => {});
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    req.end(text.slice(half));
  };
  return { status, finish, abandon: () => req.destroy() };
}
