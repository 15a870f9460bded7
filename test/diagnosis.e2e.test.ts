// Diagnosis end to end: failure classification, metrics and events against the real worker and
// API processes, real agents and trainers, on the suite's Temporal dev server.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { nodeLogPath } from '../cluster/local/localBackend.ts';
import { freePort } from '../deploy/local/devServer.ts';
import { statusQuery } from '../workflows/job/messages.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { trainerPids, jobSpec, repoRoot } from './jobFixtures.ts';
import { parsePrometheusText, sampleSum, type Exposition } from './promText.ts';
import { startTestStack, type TestStack } from './stack.ts';

describe('diagnosis on the local backend', () => {
  let stack: TestStack;
  let workerMetrics: string;
  let before: Exposition;

  beforeAll(async () => {
    workerMetrics = `127.0.0.1:${await freePort()}`;
    stack = await startTestStack('diagnosis', { ROVER_WORKER_METRICS_ADDRESS: workerMetrics });
    await Promise.all([stack.startWorker(), stack.startApi()]);
    before = await scrape(`${stack.config.api.url}/metrics`);
  });
  afterAll(async () => {
    await stack?.close();
  });

  const submit = (spec: ReturnType<typeof jobSpec>) => submitJob(stack.client, spec, { taskQueue: stack.config.temporal.taskQueue });
  const scrape = async (url: string) => {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    return parsePrometheusText(await res.text());
  };
  /** Runs `rover events …` against the stack's store. */
  const roverEvents = async (...args: string[]) =>
    (await promisify(execFile)(process.execPath, [path.join(repoRoot, 'bin/rover.js'), 'events', ...args], { env: { ...process.env, ...stack.env } })).stdout;
  const status = (name: string) => stack.client.workflow.getHandle(`job-${name}`).query(statusQuery);

  it('fails fast when a trainer raises the same exception at the same step twice, with its last line in the reason', async () => {
    // Checkpoints every 5 steps: each attempt resumes at step 5 and crashes again at step 8.
    const spec = jobSpec(stack.home, 'same-bug', { steps: 30, extraArgs: ['--crash-at-step', '8'], maxProcessRestarts: 5, maxNodeRelaunches: 3 });
    const handle = await submit(spec);
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('FAILED');
    expect(result.reason).toMatch(/^node 0 incarnation 0 failed with exit code 1: the same user error twice at step 7 .*RuntimeError: injected crash at step 8 on rank 0 \(--crash-at-step\)$/);
    expect(result.nodeRelaunches).toBe(0);
    expect(result.nodes.every((n) => n.restarts < 5)).toBe(true);

    const failures = (await roverEvents('job-same-bug', '--kind', 'process_failed', '--json')).trim().split('\n').map((l) => JSON.parse(l));
    const culprit = failures.filter((e) => e.data.failure.class === 'userError');
    expect(culprit.length).toBe(2);
    expect(culprit[0]).toMatchObject({ jobId: 'same-bug', source: 'agent', rank: 0, nodeId: 0, data: { step: 7, failure: { rule: 'python-traceback' } } });
    expect(failures.every((e) => e.kind === 'process_failed')).toBe(true);
    const human = await roverEvents('same-bug');
    expect(human).toMatch(/worker\s+node_launched\s+node 0\/0/);
    expect(human).toMatch(/api\s+round_closed/);
    expect(human).toContain('    RuntimeError: injected crash at step 8 on rank 0 (--crash-at-step)');
  });

  it('still restarts a SIGKILLed trainer in place', async () => {
    const handle = await submit(jobSpec(stack.home, 'sigkill', { steps: 60 }));
    const node = await waitUntil(async () => {
      const s = await status('sigkill').catch(() => undefined);
      const [n0] = await stack.store.nodes.listByJob('sigkill', { statuses: ['running'] });
      return s?.phase === 'RUNNING' && n0 && (n0.step ?? 0) >= 3 && n0.pid ? n0 : undefined;
    }, 'sigkill training', 90_000, 200);
    const [trainer] = await trainerPids(node.pid!);
    process.kill(trainer!, 'SIGKILL');
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('SUCCEEDED');
    expect(result.processRestarts).toBeGreaterThanOrEqual(1);
    expect(result.nodes.every((n) => n.incarnation === 0)).toBe(true);
  });

  const hangSpec = (name: string, extraArgs: string[]) => {
    const spec = jobSpec(stack.home, name, { steps: 30, extraArgs });
    spec.spec.faultTolerance.hangTimeout = 3000;
    return spec;
  };
  const events = (name: string, kind: string) => stack.store.nodeEvents.list(name, { kinds: [kind] });

  it('detects a trainer that stops making progress, puts its stacks in rover events, and restarts the group', async () => {
    const handle = await submit(hangSpec('hung', ['--hang-at-step', '8', '--crash-once']));
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('SUCCEEDED');
    const [hang, ...more] = await events('hung', 'hang_suspected');
    expect(more).toEqual([]);
    const { idleMs, step, action } = hang!.data as { idleMs: number; step: number; action: string };
    expect(action).toBe('restart');
    expect(step).toBe(7);
    // Detected on the first heartbeat after the timeout (interval 200 ms; slack for a loaded machine).
    expect(idleMs).toBeGreaterThanOrEqual(3000);
    expect(idleMs).toBeLessThan(3000 + 200 + 1500);
    const dumps = await events('hung', 'stack_dump');
    const rank0 = dumps.find((d) => d.rank === 0);
    expect(rank0?.data).toMatchObject({ hang: hang!.id, method: expect.stringMatching(/py-spy|faulthandler/) });
    expect(String((rank0!.data as { stack: string }).stack)).toMatch(/inject_fault/);
    expect(dumps.some((d) => typeof (d.data as { processTree?: string }).processTree === 'string')).toBe(true);
    const rounds = await events('hung', 'round_opened');
    expect(rounds.some((r) => /hang/.test(String((r.data as { cause: string }).cause)))).toBe(true);
    const shown = await roverEvents('hung', '--kind', 'hang_suspected', 'stack_dump');
    expect(shown).toMatch(/api\s+hang_suspected/);
    expect(shown).toMatch(/agent\s+stack_dump\s+node 0\/0 rank 0/);
    expect(shown).toMatch(/^ {4}.*inject_fault/m);
  });

  it('reports no hang while a checkpoint save takes longer than hangTimeout', async () => {
    const handle = await submit(hangSpec('slow-save', ['--slow-checkpoint-at-step', '10', '--slow-checkpoint-time', '6']));
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('SUCCEEDED');
    expect(await events('slow-save', 'hang_suspected')).toEqual([]);
    expect(readFileSync(nodeLogPath(stack.home, 'slow-save', 0), 'utf8')).toContain('slow checkpoint save at step 10 (6 s)');
    expect(result.processRestarts).toBe(0);
  });

  it('serves API and worker metrics in the Prometheus text format, and the counters moved', async () => {
    const api = await scrape(`${stack.config.api.url}/metrics`);
    const moved = (name: string, labels: Record<string, string> = {}) => sampleSum(api, name, labels) - sampleSum(before, name, labels);
    expect(moved('rover_process_restarts_total', { reason: 'userError' })).toBeGreaterThanOrEqual(2);
    expect(moved('rover_process_restarts_total', { reason: 'transient' })).toBeGreaterThanOrEqual(1);
    expect(moved('rover_rendezvous_duration_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(moved('rover_api_request_duration_seconds_count', { route: '/v1/jobs/:job/nodes/heartbeat', code: '200' })).toBeGreaterThan(0);
    expect(sampleSum(api, 'rover_jobs', { phase: 'FAILED' })).toBe(1);
    expect(sampleSum(api, 'rover_jobs', { phase: 'SUCCEEDED' })).toBe(3);
    for (const family of ['rover_nodes', 'rover_node_relaunches_total', 'rover_heartbeat_lag_seconds', 'rover_job_step', 'rover_job_steps_per_second', 'rover_shards_done_total', 'rover_job_samples_per_second']) {
      expect(api.types.has(family), family).toBe(true);
    }

    const worker = await scrape(`http://${workerMetrics}/metrics`);
    const completed = worker.samples.filter((s) => s.name.startsWith('temporal_activity_execution_latency') && s.name.endsWith('_count'));
    expect(completed.reduce((sum, s) => sum + s.value, 0)).toBeGreaterThan(0);
  });
  it('calls a trainer that hangs before its first step a hang after startupTimeout, and fails the job on hangAction fail', async () => {
    const spec = jobSpec(stack.home, 'stuck-start', { nodes: 1 });
    spec.spec.entrypoint = { ...spec.spec.entrypoint, command: 'sh', args: ['-c', 'echo init; exec sleep 600'] };
    spec.spec.faultTolerance = { ...spec.spec.faultTolerance, hangTimeout: 3000, startupTimeout: 3000, hangAction: 'fail' };
    const result = await jobOutcome(await submit(spec));
    expect(result.phase).toBe('FAILED');
    expect(result.reason).toMatch(/^hang: no first step \d+ s after the training processes started \(spec.faultTolerance.startupTimeout\)/);
    const [hang] = await events('stuck-start', 'hang_suspected');
    expect(hang?.data).toMatchObject({ startup: true, action: 'fail' });
    expect(result.nodes.filter((n) => n.status === 'running')).toEqual([]);
  });
});
