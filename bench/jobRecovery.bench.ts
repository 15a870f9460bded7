// Job start-up and recovery latency on the embedded stack, 4 nodes × 2 processes:
//   submit → every rank training; a killed training process → every rank training again; a
//   killed agent → its node relaunched, with the new agent's start (its process spawned → its
//   registration stored: node_launched → node_registered) → every rank training again.
// Prints figures; asserts nothing about time.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { submitJob } from '../cli/jobs.ts';
import { nodeLogPath } from '../cluster/local/localBackend.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { stopSignal } from '../workflows/job/messages.ts';
import { startBenchStack } from './benchStack.ts';

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 3);
const NODES = 4;
const NPROC = 2;
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 120_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return Date.now();
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** True when every rank printed a ROVER_STEP in the node logs after the given byte offsets. */
function allRanksStepping(home: string, job: string, offsets: number[]): boolean {
  for (let node = 0; node < NODES; node++) {
    const file = nodeLogPath(home, job, node);
    if (!existsSync(file)) return false;
    const text = readFileSync(file, 'utf8').slice(offsets[node] ?? 0);
    const ranks = new Set([...text.matchAll(/\[rank (\d+)\] ROVER_STEP /g)].map((m) => m[1]));
    if (ranks.size < NPROC) return false;
  }
  return true;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

const stack = await startBenchStack('recovery', { ROVER_WATCH_POLL_MS: '100' });
const { home, config, client, store } = stack;
const startup: number[] = [];
const recovery: number[] = [];
const agentStart: number[] = [];
const relaunch: number[] = [];
try {
  for (let i = 0; i < ITERATIONS; i++) {
    const name = `bench-${i}`;
    const parsed = parseJobSpec({
      metadata: { name },
      spec: {
        nodes: { min: NODES, max: NODES },
        nprocPerNode: NPROC,
        entrypoint: { command: 'python3', args: ['examples/trainer.py', '--steps', '100000', '--step-time', '0.05'], workdir: repoRoot },
        faultTolerance: { heartbeatInterval: '200ms', heartbeatTimeout: '10s' },
        rendezvous: { lastCallTimeout: '1s' },
        checkpoint: { dir: path.join(home, 'checkpoints', name) },
      },
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const submitted = Date.now();
    const handle = await submitJob(client, parsed.spec, { taskQueue: config.temporal.taskQueue });
    startup.push((await until(() => allRanksStepping(home, name, []), `${name} training`)) - submitted);

    const agent = (await store.nodes.listByJob(name)).find((n) => n.nodeId === 0)!;
    const children = readFileSync(`/proc/${agent.pid}/task/${agent.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    const offsets = Array.from({ length: NODES }, (_, n) => statSync(nodeLogPath(home, name, n)).size);
    const killed = Date.now();
    process.kill(children[0]!, 'SIGKILL');
    recovery.push((await until(() => allRanksStepping(home, name, offsets), `${name} recovered`)) - killed);

    // The agent of node 1 dies: its node is relaunched as incarnation 1.
    const victim = (await store.nodes.listByJob(name, { statuses: ['running'] })).find((n) => n.nodeId === 1)!;
    const relaunchOffsets = Array.from({ length: NODES }, (_, n) => statSync(nodeLogPath(home, name, n)).size);
    const agentKilled = Date.now();
    process.kill(victim.pid!, 'SIGKILL');
    relaunch.push((await until(() => allRanksStepping(home, name, relaunchOffsets), `${name} relaunched`, 180_000)) - agentKilled);
    const events = await store.nodeEvents.list(name, { kinds: ['node_launched', 'node_registered'] });
    const at = (kind: string) => events.find((e) => e.kind === kind && e.nodeId === 1 && e.incarnation === victim.incarnation + 1)!.createdAt;
    agentStart.push(at('node_registered') - at('node_launched'));

    await handle.signal(stopSignal, { reason: 'bench done' });
    await handle.result();
  }
} finally {
  await stack.close();
}
const line = (label: string, values: number[]) =>
  `${label.padEnd(44)} median ${median(values)} ms  min ${Math.min(...values)} ms  max ${Math.max(...values)} ms  (n=${values.length})`;
console.log(line(`submit → all ${NODES * NPROC} ranks training`, startup));
console.log(line('process kill → all ranks training again', recovery));
console.log(line('agent kill → all ranks training again', relaunch));
console.log(line('relaunched agent: spawned → registered', agentStart));
