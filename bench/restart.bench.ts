// Restart latency, side by side (issue 13): one training process SIGKILLed → all ranks stepping
// again, on the same torch DDP trainer (examples/torch_ddp.py, 2 nodes × 2 ranks, gloo/CPU,
// ~50 ms steps, flash checkpoints under Rover) under three launchers:
//   rover-cold  Rover as it always ran: every restart starts Python and imports torch;
//   rover-warm  spec.entrypoint.preload: [torch] — the restart runs on warm standby processes;
//   torchrun    c10d rendezvous, one invocation per node, TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
//               (without it torchrun 2.15 does not recover here; shared/NOTES.md).
// Each sample is a fresh job: started, stepping on all ranks (rover-warm: its four standbys
// ready too), then node 1's local rank 0 SIGKILLed; the time to all ranks stepping again is the
// kill → the latest `at=` of the first step number all four ranks printed after their restart.
// Launchers take turns (cold, warm, torchrun, cold, …) so a change of machine load hits all
// alike. For Rover it also prints Rover's own share: kill → the round_closed event of the
// restart (the job's event log), and kill → the process_failed report.
// Needs the torch venv (bash deploy/local/torch.sh). Knobs: BENCH_RESTART_N (default 5).
// Prints figures; asserts nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { submitJob } from '../cli/jobs.ts';
import { nodeLogPath } from '../cluster/local/localBackend.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { freePort } from '../deploy/local/devServer.ts';
import { repoRoot } from '../test/jobFixtures.ts';
import { cachedTorchPython } from '../test/torchFixtures.ts';
import { waitUntil } from '../test/waits.ts';
import { stopSignal } from '../workflows/job/messages.ts';
import { startBenchStack } from './benchStack.ts';
import { scratchDir } from './scratch.ts';

const N = Number(process.env.BENCH_RESTART_N ?? 5);
const TRAINER_ARGS = ['examples/torch_ddp.py', '--samples', '1000000', '--shard-size', '32', '--step-time', '0.05', '--checkpoint-every', '20', '--timeout', '60'];
const TRAINER_ENV = { OMP_NUM_THREADS: '1' };
const RANKS = 4;

const python = cachedTorchPython();
if (!python) {
  process.stderr.write('restart: torch is not installed; run `bash deploy/local/torch.sh` first\n');
  process.exit(2);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

/** One running job under a launcher, as a sample needs it. */
interface Run {
  /** The node logs with the trainers' output (ROVER_START, ROVER_STEP … at=). */
  logs: string[];
  /** A training process of node `node`, to kill. */
  trainer(node: number): number | undefined;
  /** Launcher-specific readiness beyond stepping (rover-warm: its standbys ready). */
  ready(): boolean;
  /** Rover's own share after a kill at `killedAt` (ms): kill → process_failed and → round_closed. */
  share?(killedAt: number): Promise<{ reportedMs: number; roundClosedMs: number } | undefined>;
  stop(): Promise<void>;
}

interface Sample {
  killToAllSteppingMs: number;
  share?: { reportedMs: number; roundClosedMs: number } | undefined;
}

/**
 * The complete lines of `file` from byte `from` on, as one text. torchrun's ranks share a pipe,
 * so two ranks' lines can run together ("…restart=1ROVER_START rank=2 …"): callers match
 * markers anywhere, not per line.
 */
function textFrom(file: string, from: number): string {
  if (!existsSync(file)) return '';
  const text = readFileSync(file).subarray(from).toString('utf8');
  return text.slice(0, text.lastIndexOf('\n') + 1);
}

const STEP = /ROVER_STEP (\d+) [^\n]*?at=(\d+\.\d+)/g;

/** Every `ROVER_STEP <n> … at=<s>` in `text`: step and epoch ms. */
const stepsIn = (text: string) => [...text.matchAll(STEP)].map((m) => ({ step: Number(m[1]), at: Number(m[2]) * 1000 }));

/**
 * When all ranks stepped again, from what the logs got after the kill: on each node, the output
 * after its ranks' new ROVER_START lines; the first step number every rank printed; the latest
 * `at=` of those (epoch ms). Undefined while not there yet.
 */
function allSteppingAt(logs: string[], offsets: number[]): number | undefined {
  const byStep = new Map<number, number[]>();
  for (const [i, file] of logs.entries()) {
    const text = textFrom(file, offsets[i]!);
    const starts = [...text.matchAll(/ROVER_START/g)];
    if (starts.length < RANKS / logs.length) return undefined;
    for (const { step, at } of stepsIn(text.slice(starts.at(-1)!.index))) byStep.set(step, [...(byStep.get(step) ?? []), at]);
  }
  const complete = [...byStep.entries()].filter(([, at]) => at.length >= RANKS).sort((a, b) => a[0] - b[0]);
  return complete.length ? Math.max(...complete[0]![1]) : undefined;
}

/** Every rank printed step ≥ 3 in the logs. */
function allStepping(logs: string[]): boolean {
  const counts = new Map<number, number>();
  for (const file of logs) {
    for (const { step } of stepsIn(textFrom(file, 0))) if (step >= 3) counts.set(step, (counts.get(step) ?? 0) + 1);
  }
  return [...counts.values()].some((c) => c >= RANKS);
}

const sizeOf = (file: string) => (existsSync(file) ? statSync(file).size : 0);

async function sample(name: string, start: () => Promise<Run>): Promise<Sample> {
  const run = await start();
  try {
    await waitUntil(() => allStepping(run.logs) && run.ready(), `${name}: all ranks stepping`, 240_000, 200);
    const victim = await waitUntil(() => run.trainer(1), `${name}: a trainer of node 1`, 30_000);
    const offsets = run.logs.map(sizeOf);
    const killedAt = Date.now();
    process.kill(victim, 'SIGKILL');
    const steppingAt = await waitUntil(() => allSteppingAt(run.logs, offsets), `${name}: all ranks stepping after the kill`, 240_000, 50);
    const share = await run.share?.(killedAt);
    return { killToAllSteppingMs: steppingAt - killedAt, share };
  } finally {
    await run.stop();
  }
}

/**
 * The children of an agent and where their stdin points: a trainer's is /dev/null (a standby's
 * too once it got its go), a waiting standby's the agent's pipe; a standby closed fd 3 once ready.
 */
function pythonChildren(pid: number | undefined): { pid: number; stdin: string; ready: boolean }[] {
  if (!pid) return [];
  return childPidsSync(pid).flatMap((child) => {
    try {
      return [{ pid: child, stdin: readlinkSync(`/proc/${child}/fd/0`), ready: !existsSync(`/proc/${child}/fd/3`) }];
    } catch {
      return [];
    }
  });
}

function childPidsSync(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function roverLauncher() {
  const stack = await startBenchStack('restart', { ROVER_WATCH_POLL_MS: '100' });
  const { home, config, client, store } = stack;
  let jobs = 0;

  const start = async (preload: string[]): Promise<Run> => {
    const name = `restart-${preload.length ? 'warm' : 'cold'}-${++jobs}`;
    const parsed = parseJobSpec({
      metadata: { name },
      spec: {
        nodes: { min: 2, max: 2 },
        nprocPerNode: 2,
        entrypoint: { command: python!, args: TRAINER_ARGS, workdir: repoRoot, env: TRAINER_ENV, ...(preload.length && { preload }) },
        // As in the goodput benchmark: torchrun sets no memory limit, neither does this run.
        resources: { memory: '16Gi' },
        faultTolerance: { maxProcessRestarts: 10, maxNodeRelaunches: 2, heartbeatInterval: '200ms', heartbeatTimeout: '10s' },
        rendezvous: { lastCallTimeout: '1s' },
        checkpoint: { dir: path.join(home, 'checkpoints', name), flash: true },
      },
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const handle = await submitJob(client, parsed.spec, { taskQueue: config.temporal.taskQueue });
    const agents = new Map<number, number>();
    const refreshAgents = async () => {
      for (const n of await store.nodes.listByJob(name, { statuses: ['running'] })) if (n.pid) agents.set(n.nodeId, n.pid);
    };
    const poll = setInterval(() => void refreshAgents().catch(() => {}), 500);
    return {
      logs: [0, 1].map((n) => nodeLogPath(home, name, n)),
      trainer: (node) => pythonChildren(agents.get(node)).find((c) => c.stdin === '/dev/null')?.pid,
      ready: () => !preload.length || [0, 1].every((n) => pythonChildren(agents.get(n)).filter((c) => c.stdin !== '/dev/null' && c.ready).length === 2),
      share: async (killedAt) => {
        const events = await waitUntil(async () => {
          const found = await store.nodeEvents.list(name, { kinds: ['process_failed', 'round_closed'] });
          const after = found.filter((e) => e.createdAt >= killedAt);
          return after.some((e) => e.kind === 'round_closed') ? after : undefined;
        }, `${name}: the restart's round_closed event`, 30_000).catch(() => undefined);
        if (!events) return undefined;
        const at = (kind: string) => events.find((e) => e.kind === kind)!.createdAt - killedAt;
        return { reportedMs: at('process_failed'), roundClosedMs: at('round_closed') };
      },
      stop: async () => {
        clearInterval(poll);
        await handle.signal(stopSignal, { reason: 'sample done' });
        await handle.result().catch(() => undefined);
      },
    };
  };
  return { start, close: stack.close };
}

async function torchrunLauncher(): Promise<Run> {
  const home = scratchDir('restart-torchrun');
  const port = await freePort();
  const torchrun = path.join(path.dirname(python!), 'torchrun');
  const nodes: ChildProcess[] = [];
  const logs = [0, 1].map((n) => path.join(home, `node-${n}.log`));
  const start = (node: number) => {
    const out = createWriteStream(logs[node]!, { flags: 'a' });
    const child = spawn(torchrun, [
      '--nnodes', '2', '--nproc-per-node', '2', '--max-restarts', '10', '--rdzv-backend', 'c10d',
      '--rdzv-endpoint', `127.0.0.1:${port}`, '--rdzv-id', `restart-${port}`, '--rdzv-conf', `is_host=${node === 0 ? 1 : 0}`, ...TRAINER_ARGS,
    ], {
      cwd: repoRoot,
      env: { ...process.env, ...TRAINER_ENV, TORCH_DISABLE_SHARE_RDZV_TCP_STORE: '1', ROVER_CHECKPOINT_DIR: path.join(home, 'checkpoints') },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    nodes[node] = child;
  };
  const trainers = (node: number) =>
    childPidsSync(nodes[node]?.pid ?? 0).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('torch_ddp.py');
      } catch {
        return false;
      }
    });
  start(0);
  await sleep(1000); // the c10d store's host first
  start(1);
  return {
    logs,
    trainer: (node) => trainers(node)[0],
    ready: () => true,
    stop: async () => {
      for (const [i, child] of nodes.entries()) {
        const orphans = trainers(i);
        for (const pid of [-child.pid!, ...orphans]) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
      await sleep(1000);
    },
  };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

console.log(`restart: n=${N} load_before=${load()} cpus=${os.cpus().length}`);
const rover = await roverLauncher();
const launchers: [string, () => Promise<Run>][] = [
  ['rover-cold', () => rover.start([])],
  ['rover-warm', () => rover.start(['torch'])],
  ['torchrun', torchrunLauncher],
];
const samples = new Map<string, Sample[]>(launchers.map(([name]) => [name, []]));
try {
  for (let i = 1; i <= N; i++) {
    for (const [name, start] of launchers) {
      const s = await sample(name, start);
      samples.get(name)!.push(s);
      const share = s.share ? ` kill_to_reported_ms=${s.share.reportedMs} kill_to_round_closed_ms=${s.share.roundClosedMs}` : '';
      console.log(`restart: sample ${i}/${N} launcher=${name} kill_to_all_stepping_ms=${s.killToAllSteppingMs}${share} load=${load()}`);
    }
  }
} finally {
  await rover.close();
}

const p50 = new Map<string, number>();
for (const [name, list] of samples) {
  const ms = list.map((s) => s.killToAllSteppingMs);
  p50.set(name, percentile(ms, 50));
  console.log(`restart: launcher=${name} kill_to_all_stepping_ms_p50=${percentile(ms, 50)} p90=${percentile(ms, 90)} n=${ms.length}`);
}
for (const [name, list] of samples) {
  const shares = list.flatMap((s) => (s.share ? [s.share] : []));
  if (!shares.length) continue;
  const closed = shares.map((s) => s.roundClosedMs);
  const reported = shares.map((s) => s.reportedMs);
  console.log(`restart: launcher=${name} rover_share kill_to_round_closed_ms_p50=${percentile(closed, 50)} p90=${percentile(closed, 90)} kill_to_reported_ms_p50=${percentile(reported, 50)}`);
}
console.log(`restart: warm_over_torchrun=${(p50.get('rover-warm')! / p50.get('torchrun')!).toFixed(2)} cold_over_torchrun=${(p50.get('rover-cold')! / p50.get('torchrun')!).toFixed(2)} load_after=${load()}`);
process.exit(0);
