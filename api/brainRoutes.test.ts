// The Brain HTTP API over a real store: stages, plans from stored history, config matching.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiTestConfig } from './testConfig.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import { tokenDigest } from '../common/tokens.ts';
import { historyKey, METRIC_RSS_BYTES, METRIC_THROUGHPUT, openStore, type Store } from '../store/index.ts';
import { buildBrainApi } from './brainServer.ts';

const MiB = 1024 * 1024;
// The operator may ask about any job (api/tokens.test.ts covers who else may ask what).
const OPERATOR = 'operator-secret-for-brain-tests';
const asOperator = { authorization: `Bearer ${OPERATOR}` };

function spec(name: string, o: { memory?: string; min?: number; max?: number; initial?: number } = {}): JobSpec {
  const parsed = parseJobSpec({
    metadata: { name, user: 'ada', group: 'vision', labels: { team: 'cv' } },
    spec: {
      nodes: { min: o.min ?? 1, max: o.max ?? 4, initial: o.initial ?? 2 },
      entrypoint: { command: 'python3', args: ['train.py'] },
      resources: { memory: o.memory ?? '512Mi', cpu: 1 },
    },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec;
}

describe('Brain API', () => {
  let store: Store;
  let app: Awaited<ReturnType<typeof buildBrainApi>>;

  const addJob = async (s: JobSpec, id = s.metadata.name) => {
    await store.jobs.create({ id, workflowId: `job-${id}`, user: 'ada', group: 'vision', backend: 'local', spec: s, phase: 'RUNNING', token: 't' });
  };
  const optimize = (body: unknown) => app.inject({ method: 'POST', url: '/brain/v1/optimize', payload: body as object, headers: asOperator });

  beforeAll(async () => {
    store = await openStore('sqlite::memory:');
    app = await buildBrainApi({ config: apiTestConfig({ ROVER_OPERATOR_TOKEN: OPERATOR }), store, logger: createLogger('test', 'silent') });
    await app.ready();
    await store.brainConfigs.publishSnapshot('yaml', 1, [
      { name: 'defaults', priority: 0, include: {}, exclude: {}, configure: { optimizer: { oomFactor: 2 }, queue: 'default' } },
      { name: 'cv-team', priority: 0, include: { labels: { team: 'cv' } }, exclude: {}, configure: { optimizer: { oomFactor: 3 }, queue: 'gpu' } },
      { name: 'not-bob', priority: 5, include: {}, exclude: { user: 'bob' }, configure: { banner: 'hello' } },
    ]);
  });
  afterAll(async () => {
    await app.close();
    await store.close();
  });

  it('rejects an unknown stage with 400 listing the stages', async () => {
    await addJob(spec('stage-job'));
    const res = await optimize({ job: 'stage-job', stage: 'warp' });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toContain('body.stage');
    expect(res.json().message).toContain('initial, oom, running');
    expect(res.json().details).toEqual({ stages: ['initial', 'oom', 'running'] });
  });

  it('rejects a bad body naming the field, and an unknown job with 404', async () => {
    const bad = await optimize({ job: 'x', stage: 'oom', nodeId: -1 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('body.nodeId');
    expect((await optimize({ job: 'nope', stage: 'initial' })).statusCode).toBe(404);
  });

  it('plans a new job from the spec without history, and from similar jobs with it', async () => {
    await addJob(spec('resnet'), 'resnet-3');
    const fresh = (await optimize({ job: 'resnet-3', stage: 'initial' })).json();
    expect(fresh.plan).toMatchObject({ stage: 'initial', rule: 'no-history', nodes: 2, resources: { memoryBytes: 512 * MiB } });
    for (const [i, peak] of [100, 200, 300].entries()) {
      const s = spec('resnet');
      await store.jobHistory.recordStart({
        jobId: `resnet-${i}`, name: 'resnet', user: 'ada', group: 'vision', cluster: 'local', entrypoint: 'python3 train.py', datasetSize: null,
        minNodes: 1, maxNodes: 4, initialNodes: 2, memoryBytes: s.spec.resources.memory, cpu: 1, phase: 'RUNNING',
      });
      await store.jobHistory.recordOutcome(`resnet-${i}`, { phase: 'SUCCEEDED', finalNodes: 3, peakRssBytes: peak * MiB, peakCpu: 0.5, endedAt: Date.now() });
    }
    const planned = (await optimize({ job: 'resnet-3', stage: 'initial' })).json();
    expect(planned.plan).toMatchObject({ rule: 'history-percentile', nodes: 3, resources: { memoryBytes: Math.ceil(300 * MiB * 1.2), cpu: 0.6 } });
    expect(planned.plan.reason).toContain('3 similar job');
  });

  it('raises an OOM node\'s memory by the configured factor over its peak and records the failure', async () => {
    await addJob(spec('oom-job', { memory: '100Mi' }));
    await store.metrics.record([{ jobId: 'oom-job', nodeId: 1, incarnation: 0, name: METRIC_RSS_BYTES, value: 120 * MiB }]);
    const res = (await optimize({ job: 'oom-job', stage: 'oom', nodeId: 1, incarnation: 0, exitCode: 1, reason: 'MemoryError' })).json();
    // cv-team (more specific) sets oomFactor 3 over the defaults' 2.
    expect(res.plan).toMatchObject({ stage: 'oom', nodeId: 1, rule: 'oom-factor', resources: { memoryBytes: 360 * MiB } });
    expect(res.configs).toEqual(['yaml/defaults', 'yaml/cv-team', 'yaml/not-bob']);
    // Under the run's history key, where its summary counts it.
    expect(await store.jobHistory.failures(historyKey('oom-job', tokenDigest('t')))).toMatchObject([{ nodeId: 1, oom: true, reason: 'MemoryError' }]);
  });

  it('recommends more nodes while throughput per node holds, none without data', async () => {
    await addJob(spec('scale-job', { initial: 1, max: 3 }));
    expect((await optimize({ job: 'scale-job', stage: 'running', currentNodes: 1 })).json().plan.rule).toBe('insufficient-data');
    await store.metrics.record([1, 2, 3].map((i) => ({ jobId: 'scale-job', name: METRIC_THROUGHPUT, value: 100 + i, labels: { nodes: '1' } })));
    const plan = (await optimize({ job: 'scale-job', stage: 'running', currentNodes: 1 })).json().plan;
    expect(plan).toMatchObject({ rule: 'scale-up-efficient', nodes: 2 });
  });

  it('serves the merged configuration by job name, by characteristics, and lists configurations', async () => {
    const byJob = await app.inject({ headers: asOperator, url: '/brain/v1/config?job=resnet-3' });
    expect(byJob.json()).toMatchObject({ configure: { queue: 'gpu', banner: 'hello', optimizer: { oomFactor: 3 } }, origin: { queue: 'yaml/cv-team' } });
    const bob = await app.inject({ headers: asOperator, method: 'POST', url: '/brain/v1/config', payload: { name: 'x', user: 'bob' } });
    expect(bob.json()).toMatchObject({ configure: { queue: 'default' }, applied: ['yaml/defaults'] });
    const byQuery = await app.inject({ headers: asOperator, url: '/brain/v1/config?name=x&user=eve&label=team=cv' });
    expect(byQuery.json().configure.queue).toBe('gpu');
    const bad = await app.inject({ headers: asOperator, method: 'POST', url: '/brain/v1/config', payload: { user: 'bob' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('body.name');
    const list = (await app.inject({ headers: asOperator, url: '/brain/v1/configs' })).json();
    expect(list.configs.map((c: { name: string }) => c.name).sort()).toEqual(['cv-team', 'defaults', 'not-bob']);
  });
});
