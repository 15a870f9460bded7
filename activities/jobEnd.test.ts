// The job activities at a job's end: a launch that outlives a stop creates nothing, and ending a
// job never waits on a backend the worker lacks or on a job that was never recorded.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { captureBackend } from '../cluster/testing.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { createJobActivities } from './job.ts';

function spec(name: string, backend: 'local' | 'kubernetes' = 'local'): JobSpec {
  const parsed = parseJobSpec({
    metadata: { name, user: 'ada' },
    spec: {
      backend,
      ...(backend === 'kubernetes' && { kubernetes: { image: 'rover:1' } }),
      nodes: { min: 1, max: 2, initial: 2 },
      entrypoint: { command: 'python3', args: ['train.py'] },
    },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec;
}

describeEachStore('job activities at the end of a job', (h) => {
  const setup = async () => {
    const store = await h.open();
    const { backend, launches } = captureBackend();
    const home = mkdtempSync(path.join(os.tmpdir(), 'rover-jobend-'));
    const config = loadConfig({ ROVER_HOME: home, ROVER_OPERATOR_TOKEN: 'signing-key-of-the-job-end-tests' });
    const acts = createJobActivities({ store, backends: [backend], config, logger: createLogger('test', 'silent') });
    return { store, launches, acts };
  };
  const runKey = '5a0f6c1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b';

  it('launches no node of a job that ended while the launch was under way (a stop does not wait for it)', async () => {
    const { launches, acts } = await setup();
    await acts.prepareJob({ jobId: 'late', workflowId: 'job-late', spec: spec('late'), runKey, targetNodes: 2 });
    await acts.finishJob({ jobId: 'late', phase: 'STOPPED', reason: 'stopped by user' });
    expect(await acts.launchNodes({ jobId: 'late', runKey, nodes: [{ id: 0, incarnation: 0 }, { id: 1, incarnation: 0 }] })).toEqual([]);
    expect(launches).toEqual([]);
  });

  it('finishes a job whose backend this worker lacks, and one that was never recorded, without an error', async () => {
    const { store, acts } = await setup();
    await acts.prepareJob({ jobId: 'kube', workflowId: 'job-kube', spec: spec('kube', 'kubernetes'), runKey, targetNodes: 2 });
    await expect(acts.launchNodes({ jobId: 'kube', runKey, nodes: [{ id: 0, incarnation: 0 }] })).rejects.toMatchObject({
      type: 'RoverConfigurationError',
      nonRetryable: true,
      message: expect.stringMatching(/^backend kubernetes is not configured on this worker: .*ROVER_KUBECONFIG/),
    });
    await expect(acts.finishJob({ jobId: 'kube', phase: 'FAILED', reason: 'cannot launch nodes' })).resolves.toBeNull();
    expect(await store.jobs.get('kube')).toMatchObject({ phase: 'FAILED', reason: 'cannot launch nodes' });
    await expect(acts.finishJob({ jobId: 'never-prepared', phase: 'STOPPED', reason: 'stopped by user' })).resolves.toBeNull();
  });

  it('says a job missing from the store is not found, so it is not retried', async () => {
    const { acts } = await setup();
    await expect(acts.removeNodes({ jobId: 'ghost', nodes: [{ id: 0, incarnation: 0 }] })).rejects.toMatchObject({
      type: 'RoverNotFoundError',
      nonRetryable: true,
      message: expect.stringContaining('job ghost is not in the store'),
    });
  });
});
