// Agent flows against a real (fake) API over HTTP, with real training processes.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from './agent.ts';
import { HttpApiClient } from './apiClient.ts';
import type { AgentSettings } from './settings.ts';
import { FakeApi, lineSink, pidAlive } from './testing.ts';
import { waitUntil } from '../test/waits.ts';

const TORCHRUN_VARS = [
  'RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'GROUP_RANK', 'ROLE_RANK', 'ROLE_WORLD_SIZE',
  'MASTER_ADDR', 'MASTER_PORT', 'TORCHELASTIC_RESTART_COUNT', 'TORCHELASTIC_MAX_RESTARTS', 'TORCHELASTIC_RUN_ID',
  'ROVER_API_URL', 'ROVER_JOB', 'ROVER_NODE', 'ROVER_TOKEN', 'ROVER_ROUND', 'EXTRA',
];
/** Trainer prelude: prints its environment on one line. */
const PRINT_ENV = `console.log(${JSON.stringify(TORCHRUN_VARS)}.map((k) => k + '=' + process.env[k]).join(' '));`;
const RESTART = 'Number(process.env.TORCHELASTIC_RESTART_COUNT)';
/** Keeps a trainer alive until the agent stops it. */
const FOREVER = 'setInterval(() => {}, 1000);';

let api: FakeApi;
let dir: string;
beforeEach(async () => {
  api = await new FakeApi().start();
  dir = mkdtempSync(join(tmpdir(), 'rover-agent-'));
});
const running: { agent: Agent; exit: Promise<number> }[] = [];
afterEach(async () => {
  // An agent a failed test left running takes its trainers down with it.
  for (const { agent } of running) agent.terminate('SIGTERM');
  await Promise.all(running.splice(0).map((r) => r.exit));
  expect(api.invalid).toEqual([]);
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

function startAgent(script: string, overrides: Partial<AgentSettings> = {}) {
  const settings: AgentSettings = {
    apiUrls: [api.url],
    job: api.job,
    node: 0,
    incarnation: 0,
    token: api.token,
    nprocPerNode: 2,
    entrypoint: { command: process.execPath, args: ['-e', script], env: { EXTRA: 'from-spec', DIR: dir } },
    maxProcessRestarts: 1,
    heartbeatIntervalMs: 100,
    shutdownGraceMs: 5000,
    host: '127.0.0.1',
    logLevel: 'silent',
    checkpointDir: join(dir, 'checkpoints'),
    startJitterMs: 0,
    ...overrides,
  };
  const out = lineSink();
  const err = lineSink();
  const agent = new Agent({
    settings,
    api: new HttpApiClient({ baseUrls: settings.apiUrls, job: settings.job, token: settings.token }),
    log: pino({ level: 'silent' }),
    output: { stdout: out.stream, stderr: err.stream },
    backoff: { baseMs: 5, capMs: 50 },
  });
  const exit = agent.run();
  running.push({ agent, exit });
  return { agent, exit, out, err };
}

describe('Agent', () => {
  it('runs two processes with the torchrun environment and reports node_succeeded', async () => {
    const { exit, out } = startAgent(PRINT_ENV);
    expect(await exit).toBe(0);
    const port = api.joins[0]!.freePort;
    const common = `WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 GROUP_RANK=0`;
    const rest =
      `ROLE_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=${port} TORCHELASTIC_RESTART_COUNT=0 ` +
      `TORCHELASTIC_MAX_RESTARTS=1 TORCHELASTIC_RUN_ID=job-test ROVER_API_URL=${api.url} ROVER_JOB=job-test ` +
      `ROVER_NODE=0 ROVER_TOKEN=test-token ROVER_ROUND=1 EXTRA=from-spec`;
    expect(out.lines().sort()).toEqual([
      `[rank 0] RANK=0 LOCAL_RANK=0 ${common} ROLE_RANK=0 ${rest}`,
      `[rank 1] RANK=1 LOCAL_RANK=1 ${common} ROLE_RANK=1 ${rest}`,
    ]);
    expect(api.reports).toEqual([{ node: 0, incarnation: 0, kind: 'node_succeeded', round: 1, restarts: 0 }]);
  });

  it('reports a crashed process, rejoins, and succeeds in the next round', async () => {
    const script = `if (${RESTART} === 0) {
        if (process.env.LOCAL_RANK === '1') { console.error('CUDA error: boom'); process.exit(7); }
        ${FOREVER}
      }`;
    const { exit } = startAgent(script);
    expect(await exit).toBe(0);
    expect(api.joins).toHaveLength(2);
    expect(api.reports).toEqual([
      {
        node: 0, incarnation: 0, kind: 'process_failed', round: 1, restarts: 0,
        localRank: 1, exitCode: 7, signal: null, stderrTail: 'CUDA error: boom', allProcessesAlike: false, exitedAt: expect.any(Number),
      },
      { node: 0, incarnation: 0, kind: 'node_succeeded', round: 2, restarts: 1 },
    ]);
  });

  it('fails the node once process failures exceed the restart budget', async () => {
    const { exit } = startAgent('process.exit(5)', { nprocPerNode: 1, maxProcessRestarts: 1 });
    expect(await exit).toBe(1);
    expect(api.reports.map((r) => [r.kind, r.round, r.restarts])).toEqual([
      ['process_failed', 1, 0],
      ['process_failed', 2, 1],
      ['node_failed', 2, 1],
    ]);
    expect(api.reports[2]?.reason).toBe(
      'local rank 0 (rank 0) exited with code 5; no process restarts left (2 failures, max restarts 1)',
    );
  });

  it('spends no restart budget on failures the API judged consequences of another node\'s', async () => {
    // Three failures, two of them victims of a peer node: within maxProcessRestarts 1.
    api.charge = (report) => report.round !== 2 && report.round !== 3;
    const { exit } = startAgent(`if (${RESTART} < 3) process.exit(5); else process.exit(0);`, { nprocPerNode: 1, maxProcessRestarts: 1 });
    expect(await exit).toBe(0);
    expect(api.reports.map((r) => [r.kind, r.round])).toEqual([
      ['process_failed', 1], ['process_failed', 2], ['process_failed', 3], ['node_succeeded', 4],
    ]);
  });

  it('reports a process killed by a signal, not the peer that exited with a traceback after it', async () => {
    const script = `if (${RESTART} === 0) {
        if (process.env.LOCAL_RANK === '0') { setTimeout(() => process.kill(process.pid, 'SIGKILL'), 200); ${FOREVER} }
        else setTimeout(() => { console.error('Traceback (most recent call last):\\n  File "t.py"\\nConnectionResetError: [Errno 104] Connection reset by peer'); process.exit(1); }, 250);
      } else process.exit(0);`;
    const { exit } = startAgent(script);
    expect(await exit).toBe(0);
    expect(api.reports[0]).toMatchObject({ kind: 'process_failed', localRank: 0, signal: 'SIGKILL', exitCode: null, allProcessesAlike: false });
  });

  it('says when every process of the node failed alike', async () => {
    const { exit } = startAgent(`console.error("can't open file 'train.py'"); process.exit(2);`, { maxProcessRestarts: 0 });
    expect(await exit).toBe(1);
    expect(api.reports[0]).toMatchObject({ kind: 'process_failed', exitCode: 2, allProcessesAlike: true, stderrTail: "can't open file 'train.py'" });
  });

  it('restarts the group into the new round the API announces', async () => {
    api.heartbeatReply = (hb) =>
      hb.round === 1 && hb.processes.length === 2 ? { action: 'restart', round: 2 } : { action: 'none' };
    const { exit, out } = startAgent(`if (${RESTART} === 0) { ${FOREVER} } else { ${PRINT_ENV} }`);
    expect(await exit).toBe(0);
    expect(out.lines().filter((l) => l.includes('TORCHELASTIC_RESTART_COUNT=1 '))).toHaveLength(2);
    expect(api.reports).toEqual([{ node: 0, incarnation: 0, kind: 'node_succeeded', round: 2, restarts: 1 }]);
  });

  it('joins the announced round while its old processes are still ending, and starts new ones only once they are gone', async () => {
    const ready = () => [0, 1].every((rank) => existsSync(join(dir, `ready-${rank}`)));
    api.heartbeatReply = (hb) => (hb.round === 1 && ready() ? { action: 'restart', round: 2 } : { action: 'none' });
    // The first group takes 800 ms to end on SIGTERM and says when it ended; the second says when it started.
    const script = `const fs = require('fs'), at = (what) => fs.writeFileSync(process.env.DIR + '/' + what + '-' + process.env.LOCAL_RANK, String(Date.now()));
      if (${RESTART} === 0) { process.on('SIGTERM', () => setTimeout(() => { at('ended'); process.exit(0); }, 800)); at('ready'); ${FOREVER} }
      else { at('started'); }`;
    const { exit } = startAgent(script);
    expect(await exit).toBe(0);
    const read = (what: string) => [0, 1].map((rank) => Number(readFileSync(join(dir, `${what}-${rank}`), 'utf8')));
    const [ended, started] = [read('ended'), read('started')];
    expect(api.joinedAt).toHaveLength(2);
    expect(api.joinedAt[1]!).toBeLessThan(Math.min(...ended));
    expect(Math.min(...started)).toBeGreaterThanOrEqual(Math.max(...ended));
  });

  it('reports a failure at once, without the settle wait, when the API already announced a newer round', async () => {
    // Rank 1 loses its connection; rank 0 would end with a traceback 1.3 s later, inside the settle
    // wait, and be reported as the cause. But a newer round is open: the cause is another node.
    api.heartbeatReply = (hb) => (hb.round === 1 && hb.processes.length === 1 ? { action: 'restart', round: 2 } : { action: 'none' });
    const script = `if (${RESTART} === 0) {
        if (process.env.LOCAL_RANK === '1') setTimeout(() => process.exit(1), 300);
        else setTimeout(() => { console.error('Traceback (most recent call last):\\nRuntimeError: culprit'); process.exit(3); }, 1300);
      } else process.exit(0);`;
    api.charge = () => false;
    const { exit } = startAgent(script);
    expect(await exit).toBe(0);
    expect(api.reports[0]).toMatchObject({ kind: 'process_failed', localRank: 1, exitCode: 1, round: 1 });
  });

  it('reports the last step its processes printed with node_succeeded, later than any heartbeat saw', async () => {
    // Heartbeats every 10 s: none carries a step before the processes end.
    const { exit } = startAgent(`console.log('ROVER_STEP 299'); console.log('ROVER_STEP 300');`, { heartbeatIntervalMs: 10_000 });
    expect(await exit).toBe(0);
    expect(api.reports).toEqual([expect.objectContaining({ kind: 'node_succeeded', step: 300 })]);
  });

  it('heartbeats step and usage, and on a stop reply ends with no process left', async () => {
    api.heartbeatReply = (hb) =>
      hb.step === 42 && hb.processes.length === 2 ? { action: 'stop', reason: 'job stopped' } : { action: 'none' };
    const { exit } = startAgent(`console.log('ROVER_STEP ' + (41 + Number(process.env.LOCAL_RANK))); ${FOREVER}`);
    expect(await exit).toBe(0);
    const last = api.heartbeats.at(-1)!;
    expect(last).toMatchObject({ round: 1, step: 42 });
    expect(last.processes.map((p) => p.localRank).sort()).toEqual([0, 1]);
    expect(last.processes.every((p) => p.rssBytes > 0)).toBe(true);
    expect(last.processes.map((p) => p.pid).filter(pidAlive)).toEqual([]);
    expect(api.reports).toEqual([]);
  });

  it('keeps training through an API outage and reports once the API is back', async () => {
    api.unavailableFor = 3; // the outage starts before registration
    const doneFile = join(dir, 'done');
    const { exit } = startAgent(`setInterval(() => require('fs').existsSync(process.env.DIR + '/done') && process.exit(0), 20);`);
    await waitUntil(() => api.heartbeats.some((hb) => hb.processes.length === 2), 'a heartbeat from the trainers', 10_000);
    api.unavailableFor = 5;
    // The answer that ends an outage is followed by its event: wait for it, or the node's exit may cut it off.
    await waitUntil(() => api.events.filter((e) => e.kind === 'control_plane_outage').length === 2, 'the second outage to be reported', 10_000);
    writeFileSync(doneFile, '');
    expect(await exit).toBe(0);
    expect(api.unavailable.slice(0, 3)).toEqual(['POST /nodes/register', 'POST /nodes/register', 'POST /nodes/register']);
    expect(api.unavailable.slice(3)).toContain('POST /nodes/heartbeat');
    expect(api.reports.map((r) => r.kind)).toEqual(['node_succeeded']);
    expect(existsSync(doneFile)).toBe(true);
    // Each outage is explained by an event once the API answers again.
    const outages = api.events.flatMap((e) => (e.kind === 'control_plane_outage' ? [e.data as { downMs: number }] : []));
    expect(outages).toHaveLength(2);
    expect(outages[0]).toMatchObject({ failedCall: 'register', lastError: expect.stringContaining('503') });
    expect(outages[1]).toMatchObject({ failedCall: 'heartbeat' });
    for (const o of outages) expect(o.downMs).toBeGreaterThanOrEqual(0);
  });

  it('treats a heartbeat answered 404 (job gone) as a stop', async () => {
    const { exit } = startAgent(FOREVER);
    const hb = await waitUntil(() => api.heartbeats.find((h) => h.processes.length === 2), 'trainers running', 10_000);
    api.jobGone = true;
    expect(await exit).toBe(0);
    expect(hb.processes.map((p) => p.pid).filter(pidAlive)).toEqual([]);
  });

  it('exits 1 without starting anything when the API refuses its token', async () => {
    const { exit } = startAgent(PRINT_ENV, { token: 'wrong' });
    expect(await exit).toBe(1);
    expect(api.joins).toEqual([]);
  });

  it('stops its processes and resolves 143 when terminated', async () => {
    const { agent, exit } = startAgent(`process.on('SIGTERM', () => {}); ${FOREVER}`, { shutdownGraceMs: 200 });
    const hb = await waitUntil(() => api.heartbeats.find((h) => h.processes.length === 2), 'trainers running', 10_000);
    agent.terminate('SIGTERM');
    expect(await exit).toBe(143);
    expect(hb.processes.map((p) => p.pid).filter(pidAlive)).toEqual([]);
  });

  it('when terminated while reporting a failure, still waits for every process to be gone', async () => {
    const script = `process.on('SIGTERM', () => {});
      setInterval(() => process.env.LOCAL_RANK === '1' && require('fs').existsSync(process.env.DIR + '/crash') && process.exit(1), 20);`;
    const { agent, exit } = startAgent(script, { shutdownGraceMs: 500 });
    const hb = await waitUntil(() => api.heartbeats.find((h) => h.processes.length === 2), 'trainers running', 10_000);
    api.unavailableFor = Number.MAX_SAFE_INTEGER;
    writeFileSync(join(dir, 'crash'), '');
    await waitUntil(() => api.unavailable.includes('POST /nodes/report'), 'the failure report to be retried', 10_000);
    agent.terminate('SIGTERM');
    expect(await exit).toBe(143);
    expect(hb.processes.map((p) => p.pid).filter(pidAlive)).toEqual([]);
  });
});
