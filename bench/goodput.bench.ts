// Goodput under faults, Rover against torchrun, side by side: the same torch DDP trainer
// (examples/torch_ddp.py: 2 nodes × 2 ranks, gloo/CPU, ~50 ms steps, a checkpoint every 20 steps)
// runs for BENCH_GOODPUT_SECONDS (default 300) under each launcher with the same fault schedule:
// a training process SIGKILLed every 45 s (alternating nodes) and node 1's agent SIGKILLed at half
// time. goodput = steps in the final model × median undisturbed step time ÷ wall time, where the
// final model's step is the last ROVER_STEP printed before the deadline and the median step time
// is each run's own median interval between consecutive steps (restarts are outliers).
// torchrun: c10d rendezvous, one invocation per node, --max-restarts, the trainers' own
// checkpoints in a shared folder (rover_torch's torchrun mode), TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
// (without it torchrun 2.15 does not recover here; shared/NOTES.md). A killed torchrun agent is
// handled as a pod restart would be: its node's processes die and a new invocation starts.
// Rover: the embedded stack (`rover up`), flash checkpoints, the local backend.
// Needs the torch venv (bash deploy/local/torch.sh). Knobs: BENCH_GOODPUT_SECONDS,
// BENCH_GOODPUT_KILL_EVERY_S, BENCH_GOODPUT_PRELOAD (comma-separated modules for Rover's
// spec.entrypoint.preload, e.g. torch: warm standbys; default none, cold restarts). Prints
// figures; asserts nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { submitJob } from '../cli/jobs.ts';
import { nodeLogPath } from '../cluster/local/localBackend.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { freePort } from '../deploy/local/devServer.ts';
import { childPids, repoRoot } from '../test/jobFixtures.ts';
import { cachedTorchPython } from '../test/torchFixtures.ts';
import { stopSignal } from '../workflows/job/messages.ts';
import { startBenchStack } from './benchStack.ts';
import { scratchDir } from './scratch.ts';

const SECONDS = Number(process.env.BENCH_GOODPUT_SECONDS ?? 300);
const PRELOAD = (process.env.BENCH_GOODPUT_PRELOAD ?? '').split(',').filter(Boolean);
// On a machine so loaded that a restart takes longer than this, no launcher keeps any step.
const KILL_EVERY_S = Number(process.env.BENCH_GOODPUT_KILL_EVERY_S ?? 45);
const AGENT_KILL_AT_S = SECONDS / 2;
const TRAINER_ARGS = ['examples/torch_ddp.py', '--samples', '1000000', '--shard-size', '32', '--step-time', '0.05', '--checkpoint-every', '20', '--timeout', '60'];
const TRAINER_ENV = { OMP_NUM_THREADS: '1' };

const python = cachedTorchPython();
if (!python) {
  process.stderr.write('goodput: torch is not installed; run `bash deploy/local/torch.sh` first\n');
  process.exit(2);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a launcher under test offers the fault schedule. */
interface Launcher {
  name: string;
  /** Pids of node `node`'s training processes. */
  trainers(node: number): Promise<number[]>;
  /** SIGKILLs node `node`'s agent (and does what the platform does about it). */
  killAgent(node: number): Promise<void>;
  /** The node logs holding the trainers' ROVER_STEP lines. */
  logs(): string[];
}

/** Runs the fault schedule for SECONDS from now, then returns the goodput figures. */
async function measure(launcher: Launcher) {
  const started = Date.now();
  const faults: { at: number; act: () => Promise<void> }[] = [];
  for (let t = KILL_EVERY_S, i = 0; t < SECONDS; t += KILL_EVERY_S, i++) {
    const node = (i + 1) % 2;
    faults.push({ at: t, act: async () => {
      const pids = await launcher.trainers(node);
      if (pids[0]) process.kill(pids[0], 'SIGKILL');
      console.log(`${launcher.name}: t=${t}s SIGKILL trainer ${pids[0] ?? '(none running)'} of node ${node}`);
    } });
  }
  faults.push({ at: AGENT_KILL_AT_S, act: async () => {
    await launcher.killAgent(1);
    console.log(`${launcher.name}: t=${AGENT_KILL_AT_S}s SIGKILL agent of node 1`);
  } });
  faults.sort((a, b) => a.at - b.at);
  for (const f of faults) {
    await sleep(Math.max(0, started + f.at * 1000 - Date.now()));
    await f.act().catch((err: Error) => console.log(`${launcher.name}: fault at ${f.at}s: ${err.message}`));
  }
  await sleep(Math.max(0, started + SECONDS * 1000 - Date.now()));
  const deadline = Date.now() / 1000;
  const steps = launcher.logs().flatMap((file) =>
    existsSync(file) ? [...readFileSync(file, 'utf8').matchAll(/ROVER_STEP (\d+) .*?at=(\d+\.\d+)/g)].map((m) => ({ step: Number(m[1]), at: Number(m[2]) })) : [],
  ).filter((s) => s.at <= deadline).sort((a, b) => a.at - b.at);
  const intervals: number[] = [];
  let prev: { step: number; at: number } | undefined;
  for (const s of steps) {
    if (prev && s.step === prev.step + 1) intervals.push(s.at - prev.at);
    if (!prev || s.step !== prev.step) prev = s;
  }
  const kept = steps.at(-1)?.step ?? 0;
  const sorted = intervals.sort((a, b) => a - b);
  const medianStep = sorted[Math.floor(sorted.length / 2)] ?? 0; // no two consecutive steps: nothing kept
  const goodput = (kept * medianStep) / SECONDS;
  console.log(`${launcher.name}: steps_kept=${kept} median_step_ms=${(medianStep * 1000).toFixed(1)} wall_s=${SECONDS} goodput=${goodput.toFixed(3)}`);
  return goodput;
}

async function underRover(): Promise<number> {
  const stack = await startBenchStack('goodput', { ROVER_WATCH_POLL_MS: '100' });
  const { home, config, client, store } = stack;
  const name = 'goodput';
  try {
    const parsed = parseJobSpec({
      metadata: { name },
      spec: {
        nodes: { min: 2, max: 2 },
        nprocPerNode: 2,
        entrypoint: { command: python!, args: TRAINER_ARGS, workdir: repoRoot, env: TRAINER_ENV, ...(PRELOAD.length > 0 && { preload: PRELOAD }) },
        // torchrun sets no memory limit: neither does this run (the default 2Gi per process,
        // enforced with prlimit --data, can fail importing torch._dynamo under memory pressure).
        resources: { memory: '16Gi' },
        faultTolerance: { maxProcessRestarts: 100, maxNodeRelaunches: 10, heartbeatInterval: '200ms', heartbeatTimeout: '10s' },
        rendezvous: { lastCallTimeout: '1s' },
        checkpoint: { dir: path.join(home, 'checkpoints', name), flash: true },
      },
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const handle = await submitJob(client, parsed.spec, { taskQueue: config.temporal.taskQueue });
    const agentPid = async (node: number) => (await store.nodes.listByJob(name, { statuses: ['running'] })).find((n) => n.nodeId === node)?.pid ?? undefined;
    const goodput = await measure({
      name: 'rover',
      trainers: async (node) => {
        const pid = await agentPid(node);
        if (!pid) return [];
        // The agent's children are its trainers and, with preload, its warm standbys: a trainer is
        // one that printed its pid in a ROVER_START line.
        const started = new Set([...readFileSync(nodeLogPath(home, name, node), 'utf8').matchAll(/ ROVER_START .* pid=(\d+)$/gm)].map((m) => Number(m[1])));
        return (await childPids(pid)).filter((p) => started.has(p));
      },
      killAgent: async (node) => {
        const pid = await agentPid(node);
        if (pid) process.kill(-pid, 'SIGKILL');
      },
      logs: () => [0, 1].map((n) => nodeLogPath(home, name, n)),
    });
    await handle.signal(stopSignal, { reason: 'bench done' });
    await handle.result().catch(() => undefined);
    return goodput;
  } finally {
    await stack.close();
  }
}

async function underTorchrun(): Promise<number> {
  const home = scratchDir('torchrun');
  const port = await freePort();
  const torchrun = path.join(path.dirname(python!), 'torchrun');
  const nodes: (ChildProcess | undefined)[] = [];
  const logs = [0, 1].map((n) => path.join(home, `node-${n}.log`));
  const start = (node: number) => {
    const out = createWriteStream(logs[node]!, { flags: 'a' });
    const child = spawn(torchrun, [
      '--nnodes', '2', '--nproc-per-node', '2', '--max-restarts', '100', '--rdzv-backend', 'c10d',
      '--rdzv-endpoint', `127.0.0.1:${port}`, '--rdzv-id', 'goodput', '--rdzv-conf', `is_host=${node === 0 ? 1 : 0}`, ...TRAINER_ARGS,
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
  /** The trainers torchrun started: its children running the script. */
  const trainers = async (node: number) => {
    const pid = nodes[node]?.pid;
    if (!pid) return [];
    return (await childPids(pid)).filter((p) => existsSync(`/proc/${p}/cmdline`) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('torch_ddp.py'));
  };
  start(0);
  await sleep(1000); // the c10d store's host first
  start(1);
  try {
    return await measure({
      name: 'torchrun',
      trainers,
      killAgent: async (node) => {
        const orphans = await trainers(node);
        process.kill(nodes[node]!.pid!, 'SIGKILL');
        // As a pod restart would: the node's processes die with it, and the node comes back.
        for (const pid of orphans) process.kill(pid, 'SIGKILL');
        start(node);
      },
      logs: () => logs,
    });
  } finally {
    for (const child of nodes) {
      const orphans = child?.pid ? await trainers(nodes.indexOf(child)) : [];
      try {
        if (child?.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone already
      }
      for (const pid of orphans) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  }
}

const rover = await underRover();
const torchrun = await underTorchrun();
const ratio = torchrun > 0 ? (rover / torchrun).toFixed(2) : 'n/a (torchrun kept no step)';
console.log(`goodput: rover=${rover.toFixed(3)} torchrun=${torchrun.toFixed(3)} ratio=${ratio} preload=${PRELOAD.join(',') || 'none'}`);
