// Elastic jobs end to end: the real worker and API processes, real agents, real trainers
// doing a TCP all-reduce, on the suite's Temporal dev server.
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import path from 'node:path';
import { promisify } from 'node:util';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { isAlive } from '../cluster/local/processes.ts';
import { nodeLogPath } from '../cluster/local/localBackend.ts';
import type { JobStatus } from '../workflows/job/messages.ts';
import { scaleUpdate, statusQuery, stopSignal } from '../workflows/job/messages.ts';
import { startTestStack, type TestStack } from './stack.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { trainerPids, jobSpec, jobSpecInput, repoRoot } from './jobFixtures.ts';

const run = promisify(execFile);

describe('elastic jobs on the local backend', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack('elastic jobs');
    await Promise.all([stack.startWorker(), stack.startApi()]);
  });
  afterAll(async () => {
    await stack?.close();
  });

  const submit = async (spec: ReturnType<typeof jobSpec>, continueAsNewAfterEvents?: number) =>
    submitJob(stack.client, spec, { taskQueue: stack.config.temporal.taskQueue, continueAsNewAfterEvents });
  const status = (name: string) => stack.client.workflow.getHandle(`job-${name}`).query(statusQuery);
  const running = (name: string, minStep = 5) =>
    waitUntil(async () => {
      const s = await status(name);
      if (s.phase !== 'RUNNING') return undefined;
      const nodes = await stack.store.nodes.listByJob(name, { statuses: ['running'] });
      return nodes.length === s.targetNodes && nodes.every((n) => (n.step ?? 0) >= minStep) ? s : undefined;
    }, `job ${name} training past step ${minStep}`, 90_000, 200);
  /** With ROVER_RECORD_HISTORIES=1, keeps the run's history for test/replay.test.ts. */
  const record = async (name: string) => {
    if (process.env.ROVER_RECORD_HISTORIES !== '1') return;
    const history = await stack.client.workflow.getHandle(`job-${name}`).fetchHistory();
    writeFileSync(path.join(repoRoot, 'test/histories', `${name}.json`), historyToJSON(history));
  };
  const agentPids = async (name: string) =>
    (await stack.store.nodes.listByJob(name)).flatMap((n) => (n.pid === null ? [] : [n.pid]));

  it('trains 2 nodes × 2 processes to completion and is found by RoverJobState', async () => {
    const handle = await submit(jobSpec(stack.home, 'basic'));
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('SUCCEEDED');
    expect(result.worldSize).toBe(4);
    const log = readFileSync(nodeLogPath(stack.home, 'basic', 1), 'utf8');
    expect(log).toMatch(/ROVER_DONE rank=3/);
    const { stdout } = await run(inject('temporalCli'), [
      'workflow', 'list', '--address', stack.config.temporal.address, '--query', 'RoverJobState="SUCCEEDED" AND RoverJobName="basic"', '-o', 'json',
    ]);
    expect(stdout).toContain('job-basic');
    await record('basic');
  });

  it('restarts the group in place when a training process is killed, and counts the restart', async () => {
    const handle = await submit(jobSpec(stack.home, 'proc-kill'));
    await running('proc-kill');
    const [agent] = await agentPids('proc-kill');
    const [trainer] = await trainerPids(agent!);
    process.kill(trainer!, 'SIGKILL');
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('SUCCEEDED');
    expect(result.processRestarts).toBeGreaterThanOrEqual(1);
    expect(result.nodes.every((n) => n.incarnation === 0)).toBe(true);
  });

  it('relaunches a killed agent as incarnation 1 and finishes', async () => {
    const handle = await submit(jobSpec(stack.home, 'agent-kill'));
    await running('agent-kill');
    const node1 = (await stack.store.nodes.listByJob('agent-kill')).find((n) => n.nodeId === 1)!;
    process.kill(-node1.pid!, 'SIGKILL');
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('SUCCEEDED');
    expect(result.nodes.find((n) => n.id === 1)?.incarnation).toBe(1);
    expect(result.nodeRelaunches).toBe(1);
    await record('agent-kill');
  });

  it('scales 2 → 3 while running so every trainer sees WORLD_SIZE 6, and refuses 9 above max', async () => {
    const handle = await submit(jobSpec(stack.home, 'scale', { max: 4, steps: 80 }));
    await running('scale');
    const refused = await handle.executeUpdate(scaleUpdate, { args: [{ nodes: 9 }] }).catch((err: Error) => err);
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((refused as WorkflowUpdateFailedError).cause?.message).toMatch(/cannot scale to 9 nodes.*max 4/);
    expect((await status('scale')).targetNodes).toBe(2);
    const scaled = await handle.executeUpdate(scaleUpdate, { args: [{ nodes: 3 }] });
    expect(scaled.targetNodes).toBe(3);
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('SUCCEEDED');
    expect(result.worldSize).toBe(6);
    await record('scale');
    const started = [0, 1, 2].flatMap((n) => readFileSync(nodeLogPath(stack.home, 'scale', n), 'utf8').match(/ROVER_DONE rank=\d+/g) ?? []);
    expect(new Set(started).size).toBe(6);
    const node2 = readFileSync(nodeLogPath(stack.home, 'scale', 2), 'utf8');
    expect(node2).toMatch(/world_size=6/);
  });

  it('stops on request: STOPPED and no process of the job alive', async () => {
    const handle = await submit(jobSpec(stack.home, 'stop-me', { steps: 100000 }));
    await running('stop-me');
    const agents = await agentPids('stop-me');
    const trainers = (await Promise.all(agents.map(trainerPids))).flat();
    expect(trainers.length).toBe(4);
    await handle.signal(stopSignal, { reason: 'test over' });
    const result: JobStatus = await jobOutcome(handle);
    expect(result.phase).toBe('STOPPED');
    expect(result.reason).toBe('test over');
    expect(result.nodes.map((n) => n.status), 'no node is listed running after the stop').toEqual(['stopped', 'stopped']);
    for (const pid of [...agents, ...trainers]) expect(isAlive(pid), `pid ${pid}`).toBe(false);
  });

  it('tears every node down when the workflow is cancelled', async () => {
    const handle = await submit(jobSpec(stack.home, 'cancel-me', { steps: 100000 }));
    await running('cancel-me');
    const agents = await agentPids('cancel-me');
    const trainers = (await Promise.all(agents.map(trainerPids))).flat();
    await handle.cancel();
    const result: JobStatus = await jobOutcome(handle);
    expect(result.phase).toBe('STOPPED');
    expect(result.reason).toBe('workflow cancelled');
    for (const pid of [...agents, ...trainers]) expect(isAlive(pid), `pid ${pid}`).toBe(false);
  });

  it('survives SIGKILL of the worker and the API mid-run without launching any node twice', async () => {
    const handle = await submit(jobSpec(stack.home, 'crash-rover', { steps: 120 }));
    await running('crash-rover');
    await stack.kill('worker');
    await stack.kill('api');
    await Promise.all([stack.startWorker(), stack.startApi()]);
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('SUCCEEDED');
    const launches = await stack.store.nodeEvents.listAfter('crash-rover', 0, 1000);
    const launched = launches.filter((e) => e.kind === 'node_launched').map((e) => `${e.nodeId}/${e.incarnation}`);
    expect(launched.sort()).toEqual(['0/0', '1/0']);
  });

  it('fails after the budget when a trainer always exits with an error, naming node and exit code', async () => {
    // An exit without a traceback is not a repeated user error: it burns the restart and relaunch budgets.
    const handle = await submit(
      jobSpec(stack.home, 'always-crash', { extraArgs: ['--exit-at-step', '2', '--exit-code', '3'], maxProcessRestarts: 1, maxNodeRelaunches: 1 }),
    );
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('FAILED');
    expect(result.reason).toMatch(/node \d+ incarnation \d+ failed with exit code [13]\b/);
    expect(result.reason).toMatch(/budget exhausted/);
    expect(result.nodeRelaunches).toBe(1);
  });

  it('continues as new past the history cap and still succeeds', async () => {
    const handle = await submit(jobSpec(stack.home, 'long-history', { steps: 60 }), 25);
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('SUCCEEDED');
    const first = await stack.client.workflow.getHandle('job-long-history', handle.firstExecutionRunId).describe();
    expect(first.status.name).toBe('CONTINUED_AS_NEW');
  });

  it('is driven end to end by the rover CLI: submit --wait, status --json, list, logs, step and rate, watch, scale refusal, stop', async () => {
    const rover = (...args: string[]) =>
      run(process.execPath, [path.join(repoRoot, 'bin/rover.js'), ...args], { env: { ...process.env, ...stack.env } });
    const file = path.join(stack.home, 'cli-job.json');
    writeFileSync(file, JSON.stringify(jobSpecInput(stack.home, 'cli-job', { steps: 20 })));
    const submitted = JSON.parse((await rover('submit', file, '--wait', '--json')).stdout) as { status: JobStatus };
    expect(submitted.status.phase).toBe('SUCCEEDED');

    const status = JSON.parse((await rover('status', 'cli-job', '--json')).stdout) as JobStatus;
    expect(status).toMatchObject({ jobId: 'cli-job', workflowId: 'job-cli-job', phase: 'SUCCEEDED', worldSize: 4, targetNodes: 2, reason: null });
    expect(status.round).toBeGreaterThanOrEqual(1);
    expect(status.nodes.map((n) => Object.keys(n).sort())[0]).toEqual(expect.arrayContaining(['id', 'rank', 'incarnation', 'status', 'restarts', 'pid']));

    expect((await rover('list', '--state', 'SUCCEEDED')).stdout).toContain('cli-job');
    const logs = (await rover('logs', 'cli-job', '--node', '1')).stdout;
    expect(logs).toMatch(/ROVER_DONE rank=3/);

    const long = path.join(stack.home, 'cli-long.json');
    writeFileSync(long, JSON.stringify(jobSpecInput(stack.home, 'cli-long', { steps: 100000 })));
    await rover('submit', long);
    await running('cli-long');
    // The step and its rate come from the nodes' heartbeats, read from the store.
    await waitUntil(async () => {
      const { stdout } = await rover('status', 'cli-long');
      return /^step:\s+\d+$/m.test(stdout) && /^steps\/s:\s+[\d.]+$/m.test(stdout);
    }, 'rover status to show the step and its rate', 60_000, 500);
    // Piped, `rover watch` prints a progress line per change and ends with the job.
    const watch = spawn(process.execPath, [path.join(repoRoot, 'bin/rover.js'), 'watch', 'cli-long'], { env: { ...process.env, ...stack.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let watched = '';
    watch.stdout.on('data', (d: Buffer) => (watched += d.toString()));
    const watchExit = new Promise<number | null>((resolve) => watch.once('exit', resolve));
    await waitUntil(() => /^RUNNING · world 4 · round \d+ · step \d+/m.test(watched), `rover watch to show the progress; so far:\n${watched}`, 60_000, 200);
    const refused = await rover('scale', 'cli-long', '9').catch((err: { code: number; stderr: string }) => err);
    expect('code' in refused && refused.code).toBe(1);
    expect(refused.stderr).toMatch(/cannot scale to 9 nodes/);
    await rover('stop', 'cli-long', '--reason', 'cli says stop');
    const stopped = await jobOutcome(stack.client.workflow.getHandle('job-cli-long'));
    expect(stopped).toMatchObject({ phase: 'STOPPED', reason: 'cli says stop' });
    expect(await watchExit).toBe(1); // 0 only for SUCCEEDED
    expect(watched).toContain('job cli-long STOPPED: cli says stop');
    // Several CLI processes one after another: give a loaded machine time.
  }, 300_000);

  it('rejects a bad spec with exit code 2 and field paths, starting nothing', async () => {
    const bad = path.join(stack.home, 'bad.yaml');
    await import('node:fs/promises').then((fs) =>
      fs.writeFile(bad, 'metadata: {name: bad-spec}\nspec:\n  nodes: {min: 4, max: 2}\n  entrypoint: {command: python3}\n  nprocPerNode: zero\n'),
    );
    const result = await run(process.execPath, [path.join(repoRoot, 'bin/rover.js'), 'submit', bad], { env: { ...process.env, ...stack.env } }).catch(
      (err: { code: number; stderr: string }) => err,
    );
    expect('code' in result && result.code).toBe(2);
    expect(result.stderr).toContain('spec.nodes.min');
    expect(result.stderr).toContain('spec.nprocPerNode');
    await expect(stack.client.workflow.getHandle('job-bad-spec').describe()).rejects.toThrow(/not found/i);
  });
});
