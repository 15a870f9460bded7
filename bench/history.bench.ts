// How fast a job's workflow history grows on the embedded stack, 2 nodes × 1 process, default
// worker settings: events while the job trains idle (nothing the workflow acts on happens), per
// killed training process (restart in place) and per killed agent (node relaunch).
// Prints figures; asserts nothing.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { finalJobStatus, submitJob, type SubmittedJobHandle } from '../cli/jobs.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { statusQuery, stopSignal, type JobStatus } from '../workflows/job/messages.ts';
import { startBenchStack } from './benchStack.ts';

const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 120);
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const stack = await startBenchStack('history');
const { home, config, client, store } = stack;
const events = async (handle: SubmittedJobHandle) => (await handle.describe()).historyLength;
const lines: string[] = [];
try {
  const name = 'bench-history';
  const parsed = parseJobSpec({
    metadata: { name },
    spec: {
      nodes: { min: 2, max: 2 },
      nprocPerNode: 1,
      // No checkpoints: the idle window has nothing the workflow acts on.
      entrypoint: { command: 'python3', args: ['examples/trainer.py', '--steps', '10000000', '--step-time', '0.05', '--checkpoint-every', '100000000'], workdir: repoRoot },
      faultTolerance: { heartbeatInterval: '1s', heartbeatTimeout: '30s', maxProcessRestarts: 5, maxNodeRelaunches: 5 },
      rendezvous: { lastCallTimeout: '1s' },
      checkpoint: { dir: path.join(home, 'checkpoints', name) },
    },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const handle = await submitJob(client, parsed.spec, { taskQueue: config.temporal.taskQueue });
  /** Waits until the job runs again with every node stepping past `minStep` and `also` holds. */
  const training = (minStep: number, also: (s: JobStatus) => boolean = () => true) =>
    until(async () => {
      const s = await handle.query(statusQuery);
      const nodes = await store.nodes.listByJob(name, { statuses: ['running'] });
      return s.phase === 'RUNNING' && also(s) && nodes.length === 2 && nodes.every((n) => (n.step ?? 0) >= minStep) ? s : undefined;
    }, 'the job training');
  const step = async () => Math.min(...(await store.nodes.listByJob(name, { statuses: ['running'] })).map((n) => n.step ?? 0));

  await training(5);
  const started = await events(handle);
  lines.push(`submit → training: ${started} events`);

  const idleFrom = await events(handle);
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000)); // a measurement window, not a wait for a condition
  const idle = (await events(handle)) - idleFrom;
  lines.push(
    `idle training for ${IDLE_SECONDS} s: ${idle} events (≈ ${Math.round((idle * 3600) / IDLE_SECONDS)}/h), plus one watch return per ROVER_WATCH_MAX_WAIT_MS (${config.timing.watchMaxWaitMs / 60_000} min)`,
  );

  const agent = (await store.nodes.listByJob(name)).find((n) => n.nodeId === 0)!;
  const trainer = Number((await import('node:fs')).readFileSync(`/proc/${agent.pid}/task/${agent.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
  let before = await events(handle);
  const restartsBefore = (await handle.query(statusQuery)).processRestarts;
  process.kill(trainer, 'SIGKILL');
  await training((await step()) + 5, (s) => s.processRestarts > restartsBefore);
  lines.push(`a killed training process → training again (restart in place): ${(await events(handle)) - before} events`);

  before = await events(handle);
  const node1 = (await store.nodes.listByJob(name)).find((n) => n.nodeId === 1)!;
  process.kill(-node1.pid!, 'SIGKILL');
  await training(0, (s) => s.nodes.find((n) => n.id === 1)?.incarnation === 1);
  await training((await step()) + 5);
  lines.push(`a killed agent → node relaunched, training again: ${(await events(handle)) - before} events`);

  await handle.signal(stopSignal, { reason: 'bench done' });
  await finalJobStatus(handle);
} finally {
  await stack.close();
}
for (const line of lines) console.log(line);
