// Starts examples/trainer.py processes by hand with the torchrun environment, the way the Rover
// agent would, and waits for them with deadlines so a hanging collective fails a test, not CI.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

export const TRAINER_PATH = fileURLToPath(new URL('./trainer.py', import.meta.url));

export interface TrainerProcess {
  rank: number;
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  /** Settles when the process has exited and its output is complete. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface TrainerLaunch {
  rank: number;
  worldSize: number;
  /** Extra trainer flags for this process only. */
  args?: string[];
}

/** A TCP port nobody listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('net server has no TCP address');
  return address.port;
}

/** Spawns one trainer per launch entry; every process gets `args` and the shared rendezvous env. */
export function startTrainers(opts: {
  launches: TrainerLaunch[];
  port: number;
  runId: string;
  args: string[];
  restartCount?: number;
}): TrainerProcess[] {
  return opts.launches.map(({ rank, worldSize, args = [] }) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      WORLD_SIZE: String(worldSize),
      LOCAL_WORLD_SIZE: String(worldSize),
      GROUP_RANK: '0',
      ROLE_RANK: String(rank),
      ROLE_WORLD_SIZE: String(worldSize),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(opts.port),
      TORCHELASTIC_RUN_ID: opts.runId,
      TORCHELASTIC_RESTART_COUNT: String(opts.restartCount ?? 0),
      TORCHELASTIC_MAX_RESTARTS: '3',
      PYTHONUNBUFFERED: '1',
    };
    delete env.ROVER_CHECKPOINT_DIR; // tests always pass --checkpoint-dir explicitly
    const proc = spawn('python3', [TRAINER_PATH, ...opts.args, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    // 'close' (not 'exit') fires after both pipes drained, so the output is complete.
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      proc.once('error', reject);
      proc.once('close', (code, signal) => resolve({ code, signal }));
    });
    const run: TrainerProcess = { rank, proc, stdout: '', stderr: '', exited };
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => (run.stdout += chunk));
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (run.stderr += chunk));
    return run;
  });
}

/**
 * Waits until every process exited and returns the exit codes (128+n for signal n, like a shell).
 * Past the deadline it kills the stragglers and throws naming them.
 */
export async function waitForExit(runs: TrainerProcess[], timeoutMs: number): Promise<number[]> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    const outcome = await Promise.race([Promise.all(runs.map((r) => r.exited)), deadline]);
    if (outcome === 'timeout') {
      const stuck = runs.filter((r) => r.proc.exitCode === null && r.proc.signalCode === null);
      killAll(stuck);
      throw new Error(
        `ranks ${stuck.map((r) => r.rank).join(', ')} still running after ${timeoutMs} ms:\n` +
          stuck.map((r) => `--- rank ${r.rank} stdout\n${r.stdout}--- stderr\n${r.stderr}`).join('\n'),
      );
    }
    return outcome.map((o) => o.code ?? 128 + os.constants.signals[o.signal!]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGKILLs the processes of `runs` that are still alive (only those this harness started). */
export function killAll(runs: TrainerProcess[]): void {
  for (const r of runs) {
    if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
  }
}

/** Step numbers of the `ROVER_STEP <n> loss=<x> compute=<s>` lines a process printed, in order. */
export function stepsOf(run: TrainerProcess): number[] {
  return [...run.stdout.matchAll(/^ROVER_STEP (\d+) loss=\S+ compute=\S+$/gm)].map((m) => Number(m[1]));
}
