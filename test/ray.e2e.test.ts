// The Ray backend end to end: a real Ray head (token auth on, started here and stopped after),
// the real worker and API processes, agents run by Ray as one Ray job per node.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { isAlive } from '../cluster/local/processes.ts';
import { RayJobsClient, type RayJobInfo } from '../cluster/ray/index.ts';
import { startRayHead, type RayHead } from '../deploy/local/ray.ts';
import { loadJobSpecFile, type JobSpec } from '../common/spec/index.ts';
import { statusQuery, stopSignal } from '../workflows/job/messages.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { childPids, repoRoot } from './jobFixtures.ts';
import { findOrInstallRay, rayJobSpec, TcpProxy } from './rayFixtures.ts';
import { startTestStack, type TestStack } from './stack.ts';

const run = promisify(execFile);
const token = randomUUID();

describe('elastic jobs on the ray backend', () => {
  let head: RayHead | undefined;
  let stack: TestStack;
  let ray: RayJobsClient;

  /** Ray missing in CI: every test fails with this (rather than skipping). */
  let missingInCi: unknown;

  beforeAll(async () => {
    const command = await findOrInstallRay().catch((err: unknown) => {
      missingInCi = err;
      return undefined;
    });
    if (!command) return;
    head = await startRayHead({ ray: command, numCpus: 4, authToken: token });
    ray = new RayJobsClient({ address: head.address, token, timeoutMs: 10_000 });
    stack = await startTestStack('ray jobs', {
      ROVER_RAY_AUTH_TOKEN: token,
      ROVER_RAY_POLL_MS: '300',
      ROVER_RAY_RETRY_MAX_MS: '2000',
      ROVER_RAY_REQUEST_TIMEOUT_MS: '3000',
    });
    await Promise.all([stack.startWorker(), stack.startApi()]);
  }, 25 * 60_000);
  afterAll(async () => {
    // Whatever a failed test left running: Ray runs entrypoints in sessions of their own.
    if (head) {
      const live = (await ray.list().catch(() => [])).filter((j) => j.status === 'RUNNING' || j.status === 'PENDING');
      await Promise.all(live.map((j) => ray.stop(j.submission_id!).catch(() => false)));
    }
    await stack?.close();
    await head?.stop();
  }, 60_000);

  const needRay = (ctx: TestContext) => {
    if (missingInCi) throw missingInCi;
    if (!head) ctx.skip();
  };
  const submit = (spec: JobSpec) => submitJob(stack.client, spec, { taskQueue: stack.config.temporal.taskQueue });
  const status = (name: string) => stack.client.workflow.getHandle(`job-${name}`).query(statusQuery);
  const rayJobsOf = async (name: string): Promise<RayJobInfo[]> => (await ray.list()).filter((j) => j.metadata?.rover_job === name);
  const running = (name: string, minStep = 5) =>
    waitUntil(async () => {
      const s = await status(name);
      if (s.phase !== 'RUNNING') return undefined;
      const nodes = await stack.store.nodes.listByJob(name, { statuses: ['running'] });
      return nodes.length === s.targetNodes && nodes.every((n) => (n.step ?? 0) >= minStep) ? s : undefined;
    }, `job ${name} training past step ${minStep}`, 180_000, 250);
  /** The log of the current worker process (the stack numbers each start). */
  const workerLog = () => {
    const logs = readdirSync(path.join(stack.home, 'logs')).filter((f) => /^worker-\d+\.log$/.test(f));
    const latest = logs.sort((a, b) => Number(/\d+/.exec(b)![0]) - Number(/\d+/.exec(a)![0]))[0]!;
    return readFileSync(path.join(stack.home, 'logs', latest), 'utf8');
  };
  const rover = (args: string[]) =>
    run(process.execPath, [path.join(repoRoot, 'bin/rover.js'), ...args], { env: { ...process.env, ...stack.env, ROVER_RAY_AUTH_TOKEN: token } });

  it('trains 2 nodes × 2 processes to completion, each node a Ray job, and `rover logs` shows them', async (ctx) => {
    needRay(ctx);
    const handle = await submit(rayJobSpec(stack.home, 'ray-basic', head!.address));
    const result = await jobOutcome(handle);
    expect(result.phase, result.reason ?? '').toBe('SUCCEEDED');
    expect(result.worldSize).toBe(4);
    // The agents reported success and exit; Ray marks their jobs SUCCEEDED a moment later.
    const jobs = await waitUntil(async () => {
      const found = await rayJobsOf('ray-basic');
      return found.length === 2 && found.every((j) => j.status === 'SUCCEEDED') ? found : undefined;
    }, 'both Ray jobs to succeed', 30_000);
    expect(jobs.map((j) => j.metadata?.rover_node).sort()).toEqual(['0', '1']);
    const logs = (await Promise.all(jobs.map((j) => ray.logs(j.submission_id!)))).join('\n');
    expect(logs).toMatch(/ROVER_DONE rank=3/);
    const { stdout } = await rover(['logs', 'ray-basic']);
    expect(stdout).toMatch(/^\[node 0\] .*ROVER_DONE rank=0/m);
    expect(stdout).toMatch(/^\[node 1\] .*ROVER_DONE rank=3/m);
  });

  it('runs examples/ray.yaml as shipped: its relative script resolves against the spec file\'s folder', async (ctx) => {
    needRay(ctx);
    // Submitted from another folder, as `rover submit examples/ray.yaml` from anywhere would.
    const loaded = await loadJobSpecFile(path.join(repoRoot, 'examples', 'ray.yaml'), { cwd: os.tmpdir() });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    expect(loaded.warnings).toEqual([]);
    const shipped = loaded.spec;
    // Only the dashboard address is this test's: the shipped one is Ray's default port.
    const spec: JobSpec = { ...shipped, metadata: { ...shipped.metadata, name: 'ray-example' }, spec: { ...shipped.spec, ray: { ...shipped.spec.ray!, address: head!.address } } };
    const result = await jobOutcome(await submit(spec));
    expect(result.phase, result.reason ?? '').toBe('SUCCEEDED');
    expect(result.processRestarts).toBe(0);
    expect(result.nodeRelaunches).toBe(0);
  });

  it("relaunches a node whose Ray job was stopped from outside as incarnation 1 and finishes", async (ctx) => {
    needRay(ctx);
    const handle = await submit(rayJobSpec(stack.home, 'ray-stopped', head!.address, { steps: 150 }));
    await running('ray-stopped');
    const victim = (await rayJobsOf('ray-stopped')).find((j) => j.metadata?.rover_node === '1')!;
    expect(await ray.stop(victim.submission_id!)).toBe(true);
    const result = await jobOutcome(handle);
    expect(result.phase, result.reason ?? '').toBe('SUCCEEDED');
    expect(result.nodes.find((n) => n.id === 1)?.incarnation).toBe(1);
    expect(result.nodeRelaunches).toBe(1);
    const events = await stack.store.nodeEvents.listAfter('ray-stopped', 0, 1000);
    const lost = events.find((e) => e.nodeId === 1 && e.incarnation === 0 && (e.kind === 'node_lost' || e.kind === 'node_failed'));
    expect(JSON.stringify(lost?.data)).toMatch(/ray job rover-ray-stopped-1-0-\w+ was stopped outside Rover/);
    // The agent reported success and exits; Ray marks its job SUCCEEDED a moment later.
    await waitUntil(
      async () => (await rayJobsOf('ray-stopped')).find((j) => j.metadata?.rover_node === '1' && j.metadata.rover_incarnation === '1')?.status === 'SUCCEEDED',
      'the relaunched node\'s Ray job to succeed',
      30_000,
    );
  });

  it('stops on request: every Ray job of the job stopped, none left running', async (ctx) => {
    needRay(ctx);
    const handle = await submit(rayJobsSpecLong('ray-stop-me'));
    await running('ray-stop-me');
    expect((await rayJobsOf('ray-stop-me')).filter((j) => j.status === 'RUNNING')).toHaveLength(2);
    // Agents register their pid: on this one-machine cluster the test can watch the processes too.
    const agents = (await stack.store.nodes.listByJob('ray-stop-me')).flatMap((n) => (n.pid === null ? [] : [n.pid]));
    const trainers = (await Promise.all(agents.map(childPids))).flat();
    expect(trainers).toHaveLength(4);
    // `rover logs --follow` streams from the Ray jobs while they run, until Ctrl-C.
    const follow = spawn(process.execPath, [path.join(repoRoot, 'bin/rover.js'), 'logs', 'ray-stop-me', '--follow'], {
      env: { ...process.env, ...stack.env, ROVER_RAY_AUTH_TOKEN: token },
    });
    let followed = '';
    follow.stdout.on('data', (chunk: Buffer) => (followed += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => follow.on('exit', (code) => resolve(code)));
    try {
      const stepsSeen = () => new Set(followed.match(/^\[node 1\] \[rank 3\] ROVER_STEP \d+/gm) ?? []).size;
      await waitUntil(() => stepsSeen() > 0, 'rover logs --follow to print node 1', 60_000);
      const seen = stepsSeen();
      await waitUntil(() => stepsSeen() > seen, 'rover logs --follow to print new steps', 60_000);
      follow.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (follow.exitCode === null && follow.signalCode === null) follow.kill('SIGKILL');
    }
    await handle.signal(stopSignal, { reason: 'test over' });
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('STOPPED');
    const left = (await rayJobsOf('ray-stop-me')).filter((j) => j.status === 'RUNNING' || j.status === 'PENDING');
    expect(left.map((j) => `${j.submission_id} ${j.status}`)).toEqual([]);
    for (const pid of [...agents, ...trainers]) expect(isAlive(pid), `pid ${pid}`).toBe(false);
    // Each stopped Ray job's log was kept before Ray forgot it; `rover logs` prints it.
    const { stdout } = await rover(['logs', 'ray-stop-me', '--node', '1']);
    expect(stdout).toMatch(/^=== ray job rover-ray-stop-me-1-0-\w+ \(incarnation 0, STOPPED\) ===$/m);
    expect(stdout).toMatch(/^\[rank 3\] ROVER_STEP \d+/m);
  });

  it('rides out an unreachable Ray dashboard: launches and polls retry, the job still succeeds', async (ctx) => {
    needRay(ctx);
    const proxy = new TcpProxy(Number(new URL(head!.address).port));
    await proxy.restore();
    await proxy.cut(); // unreachable from the start: the launch must wait for it
    const warnings = () => workerLog().split('ray dashboard unreachable').length - 1;
    const before = warnings();
    const handle = await submit(rayJobSpec(stack.home, 'ray-outage', proxy.address, { steps: 250 }));
    await waitUntil(() => warnings() > before, 'the worker to notice the dashboard is unreachable', 60_000, 200);
    await proxy.restore();
    await running('ray-outage');
    // Cut again while it trains, long enough for many status polls to fail.
    const duringRun = warnings();
    await proxy.cut();
    await waitUntil(() => warnings() >= duringRun + 2, 'failed status polls', 60_000, 200);
    // Training goes on meanwhile (agents talk to Rover's API, not to Ray).
    const steps = async () => (await stack.store.nodes.listByJob('ray-outage', { statuses: ['running'] })).map((n) => n.step ?? 0);
    const stepNow = Math.min(...(await steps()));
    await waitUntil(
      async () => (await status('ray-outage')).phase !== 'RUNNING' || Math.min(...(await steps())) >= stepNow + 20,
      'training to go on while Ray is unreachable',
      120_000,
      250,
    );
    await proxy.restore();
    const result = await jobOutcome(handle);
    await proxy.cut();
    expect(result.phase, result.reason ?? '').toBe('SUCCEEDED');
    expect(result.nodeRelaunches).toBe(0);
    const events = await stack.store.nodeEvents.listAfter('ray-outage', 0, 1000);
    expect(events.filter((e) => e.kind === 'node_lost' || e.kind === 'node_failed')).toEqual([]);
  });

  it('refuses a request without the token (the cluster requires one)', async (ctx) => {
    needRay(ctx);
    const anonymous = new RayJobsClient({ address: head!.address, timeoutMs: 10_000 });
    await expect(anonymous.list()).rejects.toThrow(/requires a token.*ROVER_RAY_AUTH_TOKEN/);
  });

  it('ships the agent bundle as the Ray job\'s working_dir when told to upload it', async (ctx) => {
    needRay(ctx);
    await stack.kill('worker');
    stack.env.ROVER_RAY_AGENT_SHIPPING = 'upload';
    await stack.startWorker();
    const handle = await submit(rayJobSpec(stack.home, 'ray-upload', head!.address, { nodes: 1, nproc: 1, steps: 20 }));
    const result = await jobOutcome(handle);
    expect(result.phase, result.reason ?? '').toBe('SUCCEEDED');
    const [job] = await rayJobsOf('ray-upload');
    expect(job?.runtime_env?.working_dir).toMatch(/^gcs:\/\/_ray_pkg_[0-9a-f]{32}\.zip$/);
    expect(job?.entrypoint).toMatch(/ rover-agent\.mjs$/);
  });

  function rayJobsSpecLong(name: string): JobSpec {
    return rayJobSpec(stack.home, name, head!.address, { steps: 100000 });
  }
});
