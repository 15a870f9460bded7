// Job tokens and the operator token at the API's edge, over a real store on both dialects: the
// store holds no usable token, a job's token opens only its own job, and the Brain answers only
// to a job's token (about that job) or the operator, refusing everyone else with one reply.
import type { FastifyInstance } from 'fastify';
import { expect, it } from 'vitest';
import { apiTestConfig } from './testConfig.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { nodeToken, tokenDigest } from '../common/tokens.ts';
import type { Store } from '../store/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { buildBrainApi } from './brainServer.ts';
import { buildApi } from './server.ts';

const OPERATOR = 'operator-secret-for-tests-0123456789';
const TOKENS = { a: '3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f', b: '9f8e7d6c-5b4a-4392-8180-7f6e5d4c3b2a' };

function spec(name: string) {
  const parsed = parseJobSpec({
    metadata: { name, user: 'ada', group: 'vision', labels: { team: 'cv' } },
    spec: { nodes: { min: 1, max: 2, initial: 1 }, entrypoint: { command: 'python3', args: ['train.py'] }, resources: { memory: '512Mi', cpu: 1 } },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec;
}

async function withJobs(store: Store): Promise<void> {
  for (const [id, token] of Object.entries(TOKENS)) {
    await store.jobs.create({ id, workflowId: `job-${id}`, user: 'ada', group: 'vision', backend: 'local', spec: spec(id), phase: 'RUNNING', token });
  }
}

const logger = createLogger('test', 'silent');
const bearer = (token: string | undefined) => (token === undefined ? {} : { authorization: `Bearer ${token}` });

describeEachStore('job tokens at the API', (h) => {
  const apps: FastifyInstance[] = [];
  const open = async () => {
    const store = await h.open();
    await withJobs(store);
    const config = apiTestConfig({ ROVER_OPERATOR_TOKEN: OPERATOR });
    const api = await buildApi({ config, store, logger });
    const brain = await buildBrainApi({ config, store, logger });
    apps.push(api, brain);
    return { store, api, brain };
  };
  const closeApps = async () => {
    for (const app of apps.splice(0)) await app.close();
  };

  it('keeps a digest in the store, and the API takes the token but neither a wrong one nor the digest', async () => {
    const { store, api } = await open();
    try {
      const row = (await store.jobs.get('a'))!;
      expect(row.tokenDigest).not.toBe(TOKENS.a);
      expect(JSON.stringify(row)).not.toContain(TOKENS.a);
      const shards = (token: string | undefined, job = 'a') => api.inject({ url: `/v1/jobs/${job}/shards`, headers: bearer(token) });
      expect((await shards(TOKENS.a)).statusCode).toBe(200);
      for (const wrong of [undefined, '', `${TOKENS.a}0`, row.tokenDigest, tokenDigest(TOKENS.a).slice('sha256:'.length), TOKENS.b]) {
        const res = await shards(wrong);
        expect(res.statusCode, `token ${String(wrong)}`).toBe(403);
        expect(res.json().error).toBe('forbidden');
      }
      // The agent routes too: b's token is refused for a's heartbeat.
      const heartbeat = await api.inject({
        method: 'POST', url: '/v1/jobs/a/nodes/heartbeat', headers: bearer(TOKENS.b), payload: { node: 0, incarnation: 0, round: 1 },
      });
      expect(heartbeat.statusCode).toBe(403);
    } finally {
      await closeApps();
    }
  });

  it('lets a node token act only as its own node incarnation, of its own job', async () => {
    const { store, api, brain } = await open();
    try {
      const digestA = (await store.jobs.get('a'))!.tokenDigest;
      const node0 = nodeToken(OPERATOR, digestA, { node: 0, incarnation: 0 });
      const heartbeat = (token: string, node: number, incarnation: number, job = 'a') =>
        api.inject({ method: 'POST', url: `/v1/jobs/${job}/nodes/heartbeat`, headers: bearer(token), payload: { node, incarnation, round: 1 } });
      const lease = (token: string, node: number, incarnation: number) =>
        api.inject({ method: 'POST', url: '/v1/jobs/a/shards/lease', headers: bearer(token), payload: { node, incarnation, rank: 0 } });
      const roundStatus = (token: string, node: number, incarnation: number) =>
        api.inject({ url: `/v1/jobs/a/rendezvous/1?node=${node}&incarnation=${incarnation}`, headers: bearer(token) });

      // As itself: past authorization (whatever the route then answers, it is not a refusal).
      for (const res of [await heartbeat(node0, 0, 0), await lease(node0, 0, 0), await roundStatus(node0, 0, 0)]) expect(res.statusCode).not.toBe(403);
      // Job-wide reads that name no node, and the Brain about its own job.
      expect((await api.inject({ url: '/v1/jobs/a/shards', headers: bearer(node0) })).statusCode).toBe(200);
      expect((await brain.inject({ url: '/brain/v1/config?job=a', headers: bearer(node0) })).statusCode).toBe(200);

      // As another node, or another incarnation of itself (a relaunch gets a new token): refused.
      for (const res of [await heartbeat(node0, 1, 0), await heartbeat(node0, 0, 1), await lease(node0, 1, 0), await roundStatus(node0, 2, 0)]) {
        expect(res.statusCode).toBe(403);
        expect(res.json().message).toMatch(/token of node 0 incarnation 0 cannot act as node/);
      }
      // Named as the routes' schemas read numbers (Number(), as z.coerce): "1.0", "+1", "1e0"
      // and " 1" are node 1; body and query naming different nodes is no node at all.
      const heartbeatAs = (node: unknown, query = '') =>
        api.inject({ method: 'POST', url: `/v1/jobs/a/nodes/heartbeat${query}`, headers: bearer(node0), payload: { node, incarnation: 0, round: 1 } });
      for (const node of ['1.0', '+1', '1e0', ' 1', 1.0, '0x1', 'zero', true]) {
        const res = await heartbeatAs(node);
        expect(res.statusCode, `node ${JSON.stringify(node)}`).toBe(403);
      }
      expect((await heartbeatAs(0, '?node=1')).statusCode).toBe(403);
      for (const node of ['1.0', '%2B1', '1e0', '0x1']) {
        const res = await api.inject({ url: `/v1/jobs/a/rendezvous/1?node=${node}&incarnation=0`, headers: bearer(node0) });
        expect(res.statusCode, `?node=${node}`).toBe(403);
      }
      expect((await heartbeatAs('0.0')).statusCode).not.toBe(403);
      const leaseAs = (incarnation: unknown) =>
        api.inject({ method: 'POST', url: '/v1/jobs/a/shards/lease', headers: bearer(node0), payload: { node: 0, incarnation, rank: 0 } });
      for (const incarnation of ['1', '1.0', '+1']) expect((await leaseAs(incarnation)).statusCode, `incarnation ${incarnation}`).toBe(403);
      // A training process's rank must be one its node holds in the round it names: node 0 holds
      // rank 0 of round 1 (one process per node), so it cannot report rank 1's step as its own.
      await store.rendezvous.openRound({ jobId: 'a', round: 1, minNodes: 1, maxNodes: 2 });
      for (const n of [0, 1]) await store.rendezvous.join({ jobId: 'a', round: 1, nodeId: n, incarnation: 0, host: 'h' });
      await store.rendezvous.closeRound({ jobId: 'a', round: 1, ranks: [{ nodeId: 0, rank: 0 }, { nodeId: 1, rank: 1 }], masterAddr: 'h', masterPort: 1 });
      const stepAs = (rank: unknown, round: unknown = 1) =>
        api.inject({ method: 'POST', url: '/v1/jobs/a/trainers/step', headers: bearer(node0), payload: { node: 0, incarnation: 0, rank, round, step: 1 } });
      expect((await stepAs(0)).statusCode).toBe(200);
      for (const [rank, round] of [[1, 1], ['1.0', 1], [0, 2], [0, 'x']] as const) {
        const res = await stepAs(rank, round);
        expect(res.statusCode, `rank ${rank} round ${round}`).toBe(403);
      }
      expect((await stepAs(1)).json().message).toContain('cannot act as rank 1 in round 1: it holds ranks 0–0 there');
      // A plan request records history: the worker's job token or the operator, not a trainer's node token.
      const optimize = (token: string) => brain.inject({ method: 'POST', url: '/brain/v1/optimize', headers: bearer(token), payload: { job: 'a', stage: 'initial' } });
      expect((await optimize(node0)).statusCode).toBe(403);
      expect((await optimize(TOKENS.a)).statusCode).toBe(200);
      // Not in another job, not forged, not signed with another key, not another run's.
      const forged = `${node0.slice(0, -4)}AAAA`;
      const otherKey = nodeToken('another-signing-key-0123456789', digestA, { node: 0, incarnation: 0 });
      const otherRun = nodeToken(OPERATOR, tokenDigest('another run'), { node: 0, incarnation: 0 });
      for (const token of [forged, otherKey, otherRun, node0.replace('rn1.0.0.', 'rn1.1.0.')]) expect((await heartbeat(token, 0, 0)).statusCode).toBe(403);
      expect((await heartbeat(node0, 0, 0, 'b')).statusCode).toBe(403);
      expect((await brain.inject({ url: '/brain/v1/config?job=b', headers: bearer(node0) })).statusCode).toBe(403);
    } finally {
      await closeApps();
    }
  });

  it('refuses every Brain request without the job\'s or the operator\'s token with one and the same reply', async () => {
    const { api, brain } = await open();
    try {
      for (const app of [api, brain]) {
        const config = (job: string, token: string | undefined) => app.inject({ url: `/brain/v1/config?job=${job}`, headers: bearer(token) });
        const optimize = (job: string, token: string | undefined) =>
          app.inject({ method: 'POST', url: '/brain/v1/optimize', headers: bearer(token), payload: { job, stage: 'initial' } });
        for (const ask of [config, optimize]) {
          const refusals = [
            await ask('a', undefined),
            await ask('a', 'not-a-token'),
            await ask('a', TOKENS.b), // another job's token
            await ask('a', tokenDigest(TOKENS.a)), // the stored digest
            await ask('nope', TOKENS.a), // an unknown job
            await ask('nope', undefined),
          ];
          const first = refusals[0]!;
          expect(first.statusCode).toBe(403);
          for (const res of refusals) {
            expect(res.statusCode).toBe(first.statusCode);
            expect(res.body).toBe(first.body);
          }
          expect(first.body).not.toContain('nope');
          expect((await ask('a', TOKENS.a)).statusCode).toBe(200);
          expect((await ask('a', OPERATOR)).statusCode).toBe(200);
          // Only the operator learns that a job does not exist.
          expect((await ask('nope', OPERATOR)).statusCode).toBe(404);
        }
        const served = (await config('a', TOKENS.a)).json();
        expect(served.job).toMatchObject({ name: 'a', user: 'ada', group: 'vision' });
      }
    } finally {
      await closeApps();
    }
  });

  it('serves configurations and matching by characteristics to the operator only', async () => {
    const { brain } = await open();
    try {
      const requests = [
        (token: string | undefined) => brain.inject({ url: '/brain/v1/configs', headers: bearer(token) }),
        (token: string | undefined) => brain.inject({ url: '/brain/v1/config?name=a&user=ada', headers: bearer(token) }),
        (token: string | undefined) => brain.inject({ method: 'POST', url: '/brain/v1/config', headers: bearer(token), payload: { name: 'a', user: 'ada' } }),
      ];
      const refusal = await requests[0]!(undefined);
      for (const request of requests) {
        for (const token of [undefined, TOKENS.a, 'not-a-token']) {
          const res = await request(token);
          expect(res.statusCode).toBe(403);
          expect(res.body).toBe(refusal.body);
        }
        expect((await request(OPERATOR)).statusCode).toBe(200);
      }
    } finally {
      await closeApps();
    }
  });
});

it('gives no operator access when no operator token is configured', async () => {
  const { openStore } = await import('../store/index.ts');
  const store = await openStore('sqlite::memory:');
  await withJobs(store);
  const brain = await buildBrainApi({ config: apiTestConfig({}), store, logger });
  try {
    expect((await brain.inject({ url: '/brain/v1/configs', headers: bearer('') })).statusCode).toBe(403);
    expect((await brain.inject({ url: '/brain/v1/configs' })).statusCode).toBe(403);
    expect((await brain.inject({ url: '/brain/v1/config?job=a', headers: bearer(TOKENS.a) })).statusCode).toBe(200);
  } finally {
    await brain.close();
    await store.close();
  }
});
