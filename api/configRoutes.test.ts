// GET /v1/jobs/:job/config over a real store on both dialects: the job's own token only, a bad
// query named, and the long poll answering once the job's configuration changes.
import { afterEach, expect, it } from 'vitest';
import { apiTestConfig } from './testConfig.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { RoverClient, readTrainerEnv } from '../clients/ts/roverClient.ts';
import { describeEachStore } from '../store/testing.ts';
import { buildApi } from './server.ts';

const TOKENS = { a: '3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f', b: '9f8e7d6c-5b4a-4392-8180-7f6e5d4c3b2a' };

function spec(name: string) {
  const parsed = parseJobSpec({ metadata: { name, user: 'ada' }, spec: { entrypoint: { command: 'python3', args: ['train.py'] } } });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec;
}

const lr = (value: number) => [{ name: 'lr', priority: 0, include: { name: 'a' }, exclude: {}, configure: { trainer: { learningRate: value } } }];

describeEachStore('a job\'s configuration for its trainers', (h) => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => close?.());

  const open = async () => {
    const store = await h.open();
    for (const [id, token] of Object.entries(TOKENS)) {
      await store.jobs.create({ id, workflowId: `job-${id}`, user: 'ada', group: '', backend: 'local', spec: spec(id), phase: 'RUNNING', token });
    }
    await store.brainConfigs.publishSnapshot('yaml', 1, lr(0.05));
    const api = await buildApi({ config: apiTestConfig({}), store, logger: createLogger('test', 'silent') });
    close = () => api.close();
    const url = async () => api.listen({ host: '127.0.0.1', port: 0 });
    const get = (job: string, token: string, query = '') => api.inject({ url: `/v1/jobs/${job}/config${query}`, headers: { authorization: `Bearer ${token}` } });
    return { store, get, url };
  };

  it('serves the job\'s merged configuration with a version, to its own token only', async () => {
    const { get } = await open();
    const res = await get('a', TOKENS.a);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ configure: { trainer: { learningRate: 0.05 } }, applied: ['yaml/lr'], origin: { trainer: 'yaml/lr' } });
    expect(res.json().version).toMatch(/^[0-9a-f]{16}$/);
    expect((await get('b', TOKENS.b)).json().configure).toEqual({});
    expect((await get('a', TOKENS.b)).statusCode).toBe(403);
    const bad = await get('a', TOKENS.a, '?waitMs=100000');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('query.waitMs');
  });

  it('long-polls: the same version waits, a new snapshot answers with the new version', async () => {
    const { store, get } = await open();
    const v1 = (await get('a', TOKENS.a)).json().version as string;
    // Nothing changes: the wait runs out and the same version comes back.
    expect((await get('a', TOKENS.a, `?after=${v1}&waitMs=300`)).json().version).toBe(v1);
    const polled = get('a', TOKENS.a, `?after=${v1}&waitMs=30000`);
    await store.brainConfigs.publishSnapshot('yaml', 2, lr(0.01));
    const next = (await polled).json();
    expect(next.version).not.toBe(v1);
    expect(next.configure).toEqual({ trainer: { learningRate: 0.01 } });
  });

  it('the TypeScript client reads it, and watchConfig yields the next version only', async () => {
    const { store, url } = await open();
    const apiUrl = await url();
    const client = new RoverClient(readTrainerEnv({ ROVER_API_URL: apiUrl, ROVER_JOB: 'a', ROVER_TOKEN: TOKENS.a, ROVER_ROUND: '1' }));
    const start = await client.config();
    expect(start.configure).toEqual({ trainer: { learningRate: 0.05 } });
    // As a process started with that version (ROVER_CONFIG_VERSION) would watch.
    const watching = new RoverClient(readTrainerEnv({ ROVER_API_URL: apiUrl, ROVER_JOB: 'a', ROVER_TOKEN: TOKENS.a, ROVER_ROUND: '1', ROVER_CONFIG_VERSION: start.version }));
    const next = watching.watchConfig(30_000).next();
    await store.brainConfigs.publishSnapshot('yaml', 2, lr(0.01));
    const { value } = await next;
    expect(value?.configure).toEqual({ trainer: { learningRate: 0.01 } });
    expect(value?.version).not.toBe(start.version);
  });
});
