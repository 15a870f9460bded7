// Trainer supervision on the real stack (issue 18): every process started for a job goes with
// its round, its incarnation, its job and its stack (`rover down`), and each gets one SIGTERM.
// The trainer is test/trainers/sigterm_recording_trainer.py, which records its pids and every
// SIGTERM it gets.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { findNodeProcesses, isAlive } from '../cluster/local/processes.ts';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import { stopSignal } from '../workflows/job/messages.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { repoRoot } from './jobFixtures.ts';
import { startTestStack, type TestStack } from './stack.ts';

const TRAINER = path.join(repoRoot, 'test/trainers/sigterm_recording_trainer.py');
/** sh → python3 trainer, plus a helper that setsid()s itself out of the trainer's process group. */
const SESSION_HELPER_WRAPPER = path.join(repoRoot, 'test/trainers/wrapped_session_helper.sh');
const run = promisify(execFile);

interface StartRecord {
  rank: number;
  round: number;
  incarnation: number;
  pid: number;
  /** The wrapper's pid when the trainer runs behind `sh -c`. */
  ppid: number;
}

/** 1 node × 2 processes running `command args`, test-sized timings. */
function testSpec(stack: TestStack, name: string, command: string, args: string[], maxNodeRelaunches = 0): JobSpec {
  const parsed = parseJobSpec({
    metadata: { name, user: 'tester' },
    spec: {
      nodes: { min: 1, max: 1, initial: 1 },
      nprocPerNode: 2,
      entrypoint: { command, args, workdir: repoRoot },
      faultTolerance: { maxProcessRestarts: 3, maxNodeRelaunches, heartbeatInterval: '200ms', heartbeatTimeout: '10s' },
      rendezvous: { lastCallTimeout: '1s', joinTimeout: '60s' },
      checkpoint: { dir: path.join(stack.home, 'checkpoints', name) },
    },
  });
  if (!parsed.ok) throw new Error(`bad test spec: ${JSON.stringify(parsed.errors)}`);
  return parsed.spec;
}
const submitTo = (stack: TestStack, s: JobSpec) => submitJob(stack.client, s, { taskQueue: stack.config.temporal.taskQueue });
const records = (recordFile: string): StartRecord[] =>
  existsSync(recordFile) ? readFileSync(recordFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as StartRecord) : [];
const sigtermLines = (logFile: string) => (existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : []);

describe('trainer supervision on the local backend', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack('supervision');
    await Promise.all([stack.startWorker(), stack.startApi()]);
  });
  afterAll(async () => {
    await stack?.close();
  });

  const spec = (name: string, command: string, args: string[], maxNodeRelaunches = 0) => testSpec(stack, name, command, args, maxNodeRelaunches);
  const submit = (s: JobSpec) => submitTo(stack, s);
  const file = (name: string, what: string) => path.join(stack.home, `${name}-${what}`);
  /** Every process of the job's node 0 still running, found by the environment every one carries. */
  const nodeProcesses = (jobId: string, incarnation: number) => findNodeProcesses({ jobId, nodeId: 0, incarnation, home: stack.config.home });

  it('restarts a trainer behind `sh -c` in place, and no process of the failed round lives on', async () => {
    const name = 'wrapped-restart';
    const record = file(name, 'started.jsonl');
    // Issue 18, case 1 as written: rank 0 exits 3 at step 4, once.
    const train = `python3 ${TRAINER} --steps 60 --step-time 0.1 --record ${record} --exit-at-step 4 --exit-code 3 --exit-rank 0 --once ${file(name, 'crashed')}`;
    const handle = await submit(spec(name, 'sh', ['-c', `${train}; exit $?`]));

    const firstRound = await waitUntil(() => {
      const started = records(record);
      return started.length >= 2 ? started[0]!.round : undefined;
    }, 'the first round to start', 90_000);
    const nextRound = await waitUntil(() => {
      const next = records(record).filter((r) => r.round > firstRound);
      return next.length === 2 ? next : undefined;
    }, 'the next round to start both ranks', 90_000);

    const oldRound = records(record).filter((r) => r.round === firstRound);
    expect(oldRound.map((r) => r.rank).sort()).toEqual([0, 1]);
    // Each trainer leads its own group and sits behind its own sh; a new round means new ones.
    for (const r of oldRound) expect(nextRound.map((n) => n.pid)).not.toContain(r.pid);
    for (const r of oldRound) {
      expect(isAlive(r.pid), `round ${firstRound} rank ${r.rank} python (pid ${r.pid})`).toBe(false);
      expect(isAlive(r.ppid), `round ${firstRound} rank ${r.rank} sh wrapper (pid ${r.ppid})`).toBe(false);
    }

    const result = await jobOutcome(handle);
    expect(result.phase).toBe('SUCCEEDED');
    expect(result.processRestarts).toBeGreaterThanOrEqual(1);
    expect(await nodeProcesses(name, 0)).toEqual([]);
  });

  it('on stop gives each trainer exactly one SIGTERM and leaves no process of the job alive', async () => {
    const name = 'stop-once';
    const record = file(name, 'started.jsonl');
    const sigterms = file(name, 'sigterm.log');
    // Issue 18, case 2: a trainer that saves on SIGTERM; a second one would interrupt the save.
    const handle = await submit(spec(name, 'python3', [TRAINER, '--step-time', '0.05', '--record', record, '--sigterm-log', sigterms, '--save-time', '0.5']));
    await waitUntil(async () => {
      const nodes = await stack.store.nodes.listByJob(name, { statuses: ['running'] });
      return records(record).length === 2 && nodes.length === 1 && (nodes[0]!.step ?? 0) >= 3;
    }, 'both trainers stepping', 90_000, 200);
    const [node] = await stack.store.nodes.listByJob(name);
    const trainers = records(record).map((r) => r.pid);

    await handle.signal(stopSignal, { reason: 'test over' });
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('STOPPED');

    const lines = sigtermLines(sigterms);
    for (const pid of trainers) expect(lines.filter((l) => l.endsWith(` ${pid}`)), `trainer ${pid}`).toEqual([`term ${pid}`, `saved ${pid}`]);
    expect(lines).toHaveLength(4);
    for (const pid of [node!.pid!, ...trainers]) expect(isAlive(pid), `pid ${pid}`).toBe(false);
    expect(await nodeProcesses(name, 0)).toEqual([]);
  });

  it('stops the orphaned trainers of a SIGKILLed agent, once, before relaunching its node', async () => {
    const name = 'orphans';
    const record = file(name, 'started.jsonl');
    const sigterms = file(name, 'sigterm.log');
    const handle = await submit(
      spec(name, 'python3', [TRAINER, '--step-time', '0.05', '--record', record, '--sigterm-log', sigterms, '--save-time', '0.2'], 1),
    );
    await waitUntil(() => records(record).length === 2, 'incarnation 0 to start both trainers', 90_000);
    const [agent] = await stack.store.nodes.listByJob(name);
    const orphans = records(record).map((r) => r.pid);
    // Only the agent: its trainers lead sessions of their own and outlive it, as after an OOM kill.
    process.kill(agent!.pid!, 'SIGKILL');

    await waitUntil(() => records(record).filter((r) => r.incarnation === 1).length === 2, 'incarnation 1 to start both trainers', 90_000);
    for (const pid of orphans) expect(isAlive(pid), `incarnation 0 trainer ${pid}`).toBe(false);
    // Nobody was left to forward a SIGTERM: the backend sent each orphan its one.
    const lines = sigtermLines(sigterms);
    for (const pid of orphans) expect(lines.filter((l) => l.endsWith(` ${pid}`)), `orphan ${pid}`).toEqual([`term ${pid}`, `saved ${pid}`]);
    expect(await nodeProcesses(name, 0)).toEqual([]);

    await handle.signal(stopSignal, { reason: 'test over' });
    expect((await jobOutcome(handle)).phase).toBe('STOPPED');
    expect(await nodeProcesses(name, 1)).toEqual([]);
  });
});

describe('rover down on the local backend', () => {
  let stack: TestStack;

  // A stack of its own: `rover down` takes its worker and API with it.
  beforeAll(async () => {
    stack = await startTestStack('rover down');
    await Promise.all([stack.startWorker(), stack.startApi()]);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('leaves no process of a running job alive: agent, wrappers, trainers saving past the grace, helpers in sessions of their own', async () => {
    const name = 'down';
    const record = path.join(stack.home, `${name}-started.jsonl`);
    const sigterms = path.join(stack.home, `${name}-sigterm.log`);
    const helpers = path.join(stack.home, `${name}-helpers`);
    // Behind a launcher script (sh stays in front of python3) that also starts a helper in a
    // session of its own. Each trainer saves for 60 s on SIGTERM, far past the agent's 2 s
    // grace: only a SIGKILL ends it.
    const args = [SESSION_HELPER_WRAPPER, helpers, '--step-time', '0.05', '--record', record, '--sigterm-log', sigterms, '--save-time', '60'];
    const handle = await submitTo(stack, testSpec(stack, name, 'sh', args));
    try {
      await waitUntil(async () => {
        const nodes = await stack.store.nodes.listByJob(name, { statuses: ['running'] });
        return records(record).length === 2 && nodes.length === 1 && (nodes[0]!.step ?? 0) >= 3;
      }, 'both trainers stepping', 90_000, 200);
      const [node] = await stack.store.nodes.listByJob(name);
      const trainers = records(record);
      const helperPids = readFileSync(helpers, 'utf8').split('\n').filter(Boolean).map((l) => Number(l.split(' ')[1]));
      expect(helperPids).toHaveLength(2);
      const pids = [node!.pid!, ...trainers.flatMap((t) => [t.ppid, t.pid]), ...helperPids];
      // The stack as `rover up --detach` records it, so `rover down` finds it.
      const stackProcesses = [
        { name: 'worker', pid: stack.worker.pid, logFile: '' },
        { name: 'api', pid: stack.api.pid, logFile: '' },
      ];
      writeFileSync(path.join(stack.home, 'up.json'), JSON.stringify({ startedAt: new Date().toISOString(), processes: stackProcesses, webUiUrl: '', apiUrl: stack.config.api.url }));

      const { stdout } = await run(process.execPath, [path.join(repoRoot, 'bin/rover.js'), 'down'], { env: { ...process.env, ...stack.env }, timeout: 60_000 });
      expect(stdout).toContain(`stopped worker (${stack.worker.pid}), api (${stack.api.pid})`);

      for (const pid of pids) expect(isAlive(pid), `pid ${pid} after rover down`).toBe(false);
      expect(findNodeProcesses({ jobId: name, nodeId: 0, incarnation: 0, home: stack.config.home })).toEqual([]);
      // The agent had its orderly stop first: one SIGTERM per trainer, forwarded once; the SIGKILL came after.
      const lines = sigtermLines(sigterms);
      for (const { pid } of trainers) expect(lines.filter((l) => l.endsWith(` ${pid}`)), `trainer ${pid}`).toEqual([`term ${pid}`]);
    } finally {
      // No worker is left to run the workflow to its end.
      await handle.terminate('test over').catch(() => undefined);
    }
  });
});
