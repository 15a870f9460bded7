// The agent as its cluster backend runs it: `node --import tsx agent/main.ts`, detached, env-configured.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeApi, pidAlive } from './testing.ts';
import { waitUntil } from '../test/waits.ts';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const started: ChildProcess[] = [];
let api: FakeApi | null = null;
afterEach(async () => {
  // Whatever a failed test left behind: the agent's whole process group.
  for (const child of started.splice(0)) if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGKILL');
  await api?.close();
  api = null;
});

function runMain(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  return { child, exit, stdout: () => stdout, stderr: () => stderr };
}

describe('agent/main.ts', () => {
  it('exits 2 naming each bad variable', async () => {
    const run = runMain({ ROVER_API_URL: 'not a url', ROVER_NODE: 'x' });
    expect(await run.exit).toBe(2);
    expect(run.stderr()).toContain('invalid agent environment');
    expect(run.stderr()).toContain('ROVER_API_URL: must be a URL');
    expect(run.stderr()).toContain('ROVER_NODE: must be an integer ≥ 0');
    expect(run.stderr()).toContain('ROVER_ENTRYPOINT: is not set');
  });

  it('on SIGTERM stops its training processes and exits 143, logging JSON lines with its identity', async () => {
    api = await new FakeApi().start();
    const run = runMain({
      ROVER_API_URL: api.url,
      ROVER_JOB: api.job,
      ROVER_NODE: '3',
      ROVER_INCARNATION: '2',
      ROVER_TOKEN: api.token,
      ROVER_NPROC_PER_NODE: '2',
      ROVER_ENTRYPOINT: JSON.stringify({
        command: process.execPath,
        args: ['-e', 'console.log("training"); setInterval(() => {}, 1000)'],
      }),
      ROVER_MAX_PROCESS_RESTARTS: '0',
      ROVER_HEARTBEAT_INTERVAL_MS: '100',
      ROVER_SHUTDOWN_GRACE_MS: '2000',
    });
    const fake = api;
    const hb = await waitUntil(() => fake.heartbeats.find((h) => h.processes.length === 2), 'trainers running', 20_000);
    const trainingLines = () => run.stdout().split('\n').filter((l) => l.endsWith('] training')).sort();
    await waitUntil(() => trainingLines().length === 2, 'both trainers to print', 10_000);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(143);
    expect(hb).toMatchObject({ node: 3, incarnation: 2, round: 1 });
    expect(hb.processes.map((p) => p.pid).filter(pidAlive)).toEqual([]);

    expect(trainingLines()).toEqual(['[rank 0] training', '[rank 1] training']);
    const lines = run.stdout().split('\n').filter(Boolean);
    const logs = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.length).toBeGreaterThan(0);
    for (const log of logs) expect(log).toMatchObject({ job: api.job, node: 3, incarnation: 2 });
    expect(logs.at(-1)).toMatchObject({ exitCode: 143, msg: 'received SIGTERM' });
  });
});
