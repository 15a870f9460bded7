// The API at its edge: malformed, oversize, unknown and unauthorised requests get a JSON 4xx.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiTestConfig } from './testConfig.ts';
import { createLogger } from '../common/logger.ts';
import { openStore, type Store } from '../store/index.ts';
import { testJobSpec } from '../store/testing.ts';
import { buildApi } from './server.ts';

describe('Rover API edge', () => {
  let store: Store;
  let app: Awaited<ReturnType<typeof buildApi>>;

  beforeAll(async () => {
    const config = apiTestConfig({ ROVER_API_BODY_LIMIT: '2048' });
    store = await openStore('sqlite::memory:');
    await store.jobs.create({
      id: 'edge', workflowId: 'job-edge', user: 'u', group: '', backend: 'local', spec: testJobSpec(), phase: 'RUNNING', token: 'secret',
    });
    app = await buildApi({ config, store, logger: createLogger('test', 'silent') });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await store.close();
  });

  const post = (url: string, payload: string, token = 'secret') =>
    app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } });

  it('answers /healthz and serves Prometheus metrics', async () => {
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('rover_api_process_cpu_seconds_total');
  });

  it('rejects malformed JSON with 400 and a JSON error', async () => {
    const res = await post('/v1/jobs/edge/nodes/heartbeat', '{"node": 0,');
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/JSON/i);
  });

  it('rejects a body over the size limit with 413', async () => {
    const res = await post('/v1/jobs/edge/nodes/heartbeat', JSON.stringify({ pad: 'x'.repeat(4096) }));
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toBeTruthy();
  });

  it('rejects unknown fields and wrong types naming the field', async () => {
    const body = { node: 0, incarnation: 0, round: 1, step: null, processes: [], extra: 1 };
    const unknown = await post('/v1/jobs/edge/nodes/heartbeat', JSON.stringify(body));
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().message).toContain('extra');
    const wrong = await post('/v1/jobs/edge/nodes/heartbeat', JSON.stringify({ ...body, extra: undefined, node: 'zero' }));
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().message).toContain('body.node');
  });

  it('records a well-formed agent event and rejects a malformed one with 400 naming the field', async () => {
    const outage = { node: 0, incarnation: 0, kind: 'control_plane_outage', data: { downMs: 1200, failedCall: 'heartbeat', lastError: 'HTTP 503' } };
    await store.nodes.upsertLaunch({ jobId: 'edge', nodeId: 0, incarnation: 0, backend: 'local', status: 'running' });
    const ok = await post('/v1/jobs/edge/nodes/events', JSON.stringify(outage));
    expect(ok.statusCode).toBe(200);
    const wrongType = await post('/v1/jobs/edge/nodes/events', JSON.stringify({ ...outage, data: { ...outage.data, downMs: 'long' } }));
    expect(wrongType.statusCode).toBe(400);
    expect(wrongType.json().message).toContain('body.data.downMs');
    const extraField = await post('/v1/jobs/edge/nodes/events', JSON.stringify({ ...outage, data: { ...outage.data, secret: 'x' } }));
    expect(extraField.statusCode).toBe(400);
    expect(extraField.json().message).toContain('secret');
    const unknownKind = await post('/v1/jobs/edge/nodes/events', JSON.stringify({ ...outage, kind: 'node_succeeded' }));
    expect(unknownKind.statusCode).toBe(400);
    expect(unknownKind.json().message).toContain('body.kind');
    const kinds = (await store.nodeEvents.list('edge')).map((e) => e.kind);
    expect(kinds).toEqual(['control_plane_outage']);
  });

  it('gives 404 with a JSON error for an unknown route', async () => {
    const route = await app.inject({ url: '/nope' });
    expect(route.statusCode).toBe(404);
    expect(route.json().error).toBe('not_found');
  });

  it('answers an unknown job exactly as a token of another job: 403, so a caller learns nothing of which jobs exist', async () => {
    const join = JSON.stringify({ node: 0, incarnation: 0, host: 'h', freePort: 1 });
    const missing = await post('/v1/jobs/missing/rendezvous/join', join);
    const foreign = await post('/v1/jobs/edge/rendezvous/join', join, 'other');
    expect([missing.statusCode, foreign.statusCode]).toEqual([403, 403]);
    expect(missing.json().error).toBe('forbidden');
    expect(foreign.json().message).toBe(missing.json().message.replace('"missing"', '"edge"'));
  });

  it('never answers a garbage request with a 5xx', async () => {
    const bodies = ['', 'null', '[]', '"x"', '{"node":-1}', '{"node":1e309}', '\u0000', '{"__proto__":{"a":1}}'];
    for (const url of ['/v1/jobs/edge/nodes/register', '/v1/jobs/edge/nodes/report', '/v1/jobs/edge/rendezvous/join']) {
      for (const body of bodies) {
        const res = await post(url, body);
        expect(res.statusCode, `${url} ${JSON.stringify(body)}`).toBeGreaterThanOrEqual(400);
        expect(res.statusCode, `${url} ${JSON.stringify(body)}`).toBeLessThan(500);
      }
    }
    const badRound = await app.inject({ url: '/v1/jobs/edge/rendezvous/abc?node=0&incarnation=0', headers: { authorization: 'Bearer secret' } });
    expect(badRound.statusCode).toBe(400);
  });
});
