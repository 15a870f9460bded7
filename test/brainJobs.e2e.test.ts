// The Brain wired into jobs, end to end on the real stack: a trainer that allocates past its
// node's memory limit (enforced with prlimit) is relaunched with the Brain's OOM plan and
// succeeds; a job with auto-scaling is scaled up by the running plan within its max. Both on
// SQLite and on MySQL (with ROVER_TEST_MYSQL_URL): the job history, its failures keyed by the run
// and the throughput samples live in the store.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { freePort } from '../deploy/local/devServer.ts';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import { historyKey, METRIC_THROUGHPUT } from '../store/index.ts';
import { describeEachDialect } from '../store/testing.ts';
import { statusQuery, stopSignal } from '../workflows/job/messages.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { repoRoot } from './jobFixtures.ts';
import { startTestStack, type TestStack } from './stack.ts';

const MiB = 1024 * 1024;

function spec(home: string, name: string, o: { memory: string; args: string[]; nodes: { min: number; max: number; initial: number }; autoScaling?: object }): JobSpec {
  const parsed = parseJobSpec({
    metadata: { name, user: 'brain-tester' },
    spec: {
      nodes: o.nodes,
      nprocPerNode: 1,
      entrypoint: { command: 'python3', args: ['examples/trainer.py', '--step-time', '0.05', '--connect-timeout', '20', ...o.args], workdir: repoRoot },
      resources: { memory: o.memory },
      faultTolerance: { maxProcessRestarts: 3, maxNodeRelaunches: 3, heartbeatInterval: '200ms', heartbeatTimeout: '10s' },
      rendezvous: { lastCallTimeout: '1s', joinTimeout: '60s' },
      checkpoint: { dir: path.join(home, 'checkpoints', name) },
      ...(o.autoScaling && { autoScaling: o.autoScaling }),
    },
  });
  if (!parsed.ok) throw new Error(`bad test spec: ${JSON.stringify(parsed.errors)}`);
  return parsed.spec;
}

describeEachDialect('the Brain in jobs', (dialect) => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack(`brain jobs ${dialect}`, {}, { store: dialect });
    await Promise.all([stack.startWorker(), stack.startApi()]);
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  const submit = (s: JobSpec) => submitJob(stack.client, s, { taskQueue: stack.config.temporal.taskQueue });
  const status = (name: string) => stack.client.workflow.getHandle(`job-${name}`).query(statusQuery);

  it('relaunches a node that ran out of memory with the OOM plan\'s memory and succeeds', async () => {
    // 64 MiB of data memory cannot hold the 80 MiB the trainer allocates at step 1; twice that can.
    const handle = await submit(spec(stack.home, 'oom', { memory: '64Mi', args: ['--steps', '40', '--alloc-mb', '80'], nodes: { min: 1, max: 1, initial: 1 } }));
    const result = await jobOutcome(handle);
    expect(result.phase, result.reason ?? '').toBe('SUCCEEDED');
    const oomPlans = (result.plans ?? []).filter((p) => p.stage === 'oom');
    expect(oomPlans.length).toBeGreaterThanOrEqual(1);
    expect(oomPlans[0]).toMatchObject({ rule: 'oom-factor' });
    expect(oomPlans[0]!.applied).toContain('node 0 incarnation 1');
    expect(result.nodes[0]).toMatchObject({ id: 0, status: 'succeeded' });
    expect(result.nodes[0]!.incarnation).toBeGreaterThanOrEqual(1);
    // The incarnation that succeeded ran with at least twice the spec's memory.
    const final = await stack.store.nodes.get({ jobId: 'oom', nodeId: 0, incarnation: result.nodes[0]!.incarnation });
    expect((final?.resources as { memory: number }).memory).toBeGreaterThanOrEqual(128 * MiB);
    // Counted on the run's own summary, under the one history key.
    const key = historyKey('oom', (await stack.store.jobs.get('oom'))!.tokenDigest);
    const failures = await stack.store.jobHistory.failures(key);
    expect(await stack.store.jobHistory.get(key)).toMatchObject({ oomFailures: failures.length });
    expect(failures[0]).toMatchObject({ nodeId: 0, incarnation: 0, oom: true });
    expect((result.plans ?? []).some((p) => p.stage === 'initial')).toBe(true);
  }, 240_000);

  it('scales a job up with the running plan while its measured throughput per node holds, within max', async () => {
    const name = 'autoscale';
    const handle = await submit(spec(stack.home, name, {
      memory: '512Mi', args: ['--steps', '2000'], nodes: { min: 1, max: 2, initial: 1 }, autoScaling: { enabled: true, interval: '1s' },
    }));
    await waitUntil(async () => (await status(name)).phase === 'RUNNING', `${name} running`, 90_000, 200);
    // The trainer's step time is fixed, so the job's throughput (steps/s × nodes, measured from
    // rank 0's heartbeats) grows with every node: per-node efficiency stays 1.
    const scaled = await waitUntil(async () => {
      const s = await status(name);
      return s.targetNodes === 2 && s.phase === 'RUNNING' && s.worldSize === 2 ? s : undefined;
    }, `${name} scaled to 2 nodes by the running plan`, 120_000, 250);
    const running = (scaled.plans ?? []).filter((p) => p.stage === 'running');
    expect(running[0]).toMatchObject({ rule: 'scale-up-efficient', applied: 'scale 1 → 2 nodes' });
    const samples = await stack.store.metrics.list(name, METRIC_THROUGHPUT);
    expect(samples.filter((m) => m.labels.nodes === '1').length).toBeGreaterThanOrEqual(3);
    // At max, and without samples at 2 nodes: it stays there.
    expect((await status(name)).targetNodes).toBe(2);
    await handle.signal(stopSignal, { reason: 'test over' });
    expect((await jobOutcome(handle)).phase).toBe('STOPPED');
  }, 300_000);
});

describe('a job while the Brain is down', () => {
  let stack: TestStack;

  beforeAll(async () => {
    // Nothing listens there: every plan request fails.
    stack = await startTestStack('brain down', { ROVER_BRAIN_URL: `http://127.0.0.1:${await freePort()}` });
    await Promise.all([stack.startWorker(), stack.startApi()]);
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('goes on with its spec after the retries and succeeds, with a warning', async () => {
    const handle = await submitJob(stack.client, spec(stack.home, 'no-brain', { memory: '256Mi', args: ['--steps', '30'], nodes: { min: 1, max: 1, initial: 1 } }), {
      taskQueue: stack.config.temporal.taskQueue,
    });
    const result = await jobOutcome(handle);
    expect(result.phase, result.reason ?? '').toBe('SUCCEEDED');
    expect(result.plans ?? []).toEqual([]);
    expect(result.warnings.some((w) => w.startsWith('Brain unavailable for the initial plan'))).toBe(true);
  }, 240_000);
});
