// Errors that cannot heal end the job; errors that may heal are retried where the user sees it,
// and never keep a stop or a cancel waiting. The real worker process on the suite's Temporal.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { formatJobStatus } from '../cli/format.ts';
import { statusQuery, stopSignal, type JobStatus } from '../workflows/job/messages.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { kubeJobSpec } from './infra/kubeJobs.ts';
import { repoRoot } from './jobFixtures.ts';
import { rayJobSpec } from './rayFixtures.ts';
import { startTestStack, type TestStack } from './stack.ts';

/** A local port nothing listens on: a Ray dashboard that is down. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('errors that cannot heal end the job', () => {
  let stack: TestStack;

  beforeAll(async () => {
    // No kubeconfig: this worker has no kubernetes backend. A teardown that cannot reach its
    // cluster is given up after 2 s (default 60 s).
    stack = await startTestStack('unhealable errors', { ROVER_TEARDOWN_RETRY_MS: '2000' });
    await Promise.all([stack.startWorker(), stack.startApi()]);
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
  });

  const submit = (spec: Parameters<typeof submitJob>[1]) => submitJob(stack.client, spec, { taskQueue: stack.config.temporal.taskQueue });
  /** Resolves with the outcome, or fails when the job is still open after `ms`. */
  const endsWithin = async (handle: Awaited<ReturnType<typeof submit>>, ms: number): Promise<JobStatus> => {
    await waitUntil(async () => (await handle.describe()).status.name !== 'RUNNING', `job ${handle.workflowId} to end`, ms, 250);
    return jobOutcome(handle);
  };
  /** With ROVER_RECORD_HISTORIES=1, keeps the run's history for test/replay.test.ts (these paths: a failed step, a stop mid-retry). */
  const record = async (name: string) => {
    if (process.env.ROVER_RECORD_HISTORIES !== '1') return;
    const history = await stack.client.workflow.getHandle(`job-${name}`).fetchHistory();
    writeFileSync(path.join(repoRoot, 'test/histories', `${name}.json`), historyToJSON(history));
  };
  /** Waits for the job's status to say its launch is being retried, and why. */
  const retryingLaunch = (handle: Awaited<ReturnType<typeof submit>>) =>
    waitUntil(async () => {
      const status = await handle.query(statusQuery);
      return status.warnings.some((w) => /^launchNodes is failing and will be retried in \d+ s: /.test(w)) ? status : undefined;
    }, 'the status to say the launch is retried', 60_000, 250);

  it('fails a job whose backend this worker lacks, within seconds, saying which backend and how to configure it', async () => {
    const handle = await submit(kubeJobSpec('no-kube', { nodes: 2 }));
    const result = await endsWithin(handle, 45_000);
    expect(result.phase).toBe('FAILED');
    expect(result.reason).toMatch(/^cannot launch nodes \(configuration error\): backend kubernetes is not configured on this worker/);
    expect(result.reason).toContain('ROVER_KUBECONFIG');
    // `rover status` shows it as it shows any failure.
    expect(formatJobStatus(result)).toContain(`reason:       ${result.reason}`);
    // Temporal's status is the job's outcome, and the job row says it too.
    expect((await handle.describe()).status.name).toBe('FAILED');
    expect(await stack.store.jobs.get('no-kube')).toMatchObject({ phase: 'FAILED', reason: result.reason });
    await record('no-kube');
  });

  it('shows a launch retrying while the Ray dashboard is down, and stops promptly on request', async () => {
    const handle = await submit(rayJobSpec(stack.home, 'ray-down', `http://127.0.0.1:${await closedPort()}`, { nodes: 1 }));
    const retrying = await retryingLaunch(handle);
    expect(retrying.phase).toBe('LAUNCHING');
    expect(retrying.warnings.join('\n')).toMatch(/unreachable/);
    await handle.signal(stopSignal, { reason: 'dashboard is down' });
    const result = await endsWithin(handle, 20_000);
    expect(result).toMatchObject({ phase: 'STOPPED', reason: 'dashboard is down' });
    expect(await stack.store.jobs.get('ray-down')).toMatchObject({ phase: 'STOPPED' });
    await record('ray-down');
  });

  it('ends a job whose launch keeps failing when its workflow is cancelled', async () => {
    const handle = await submit(rayJobSpec(stack.home, 'ray-down-cancel', `http://127.0.0.1:${await closedPort()}`, { nodes: 1 }));
    await retryingLaunch(handle);
    await handle.cancel();
    const result = await endsWithin(handle, 20_000);
    expect(result).toMatchObject({ phase: 'STOPPED', reason: 'workflow cancelled' });
  });
});
