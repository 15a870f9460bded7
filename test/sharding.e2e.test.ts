// Dynamic data sharding and the checkpoint commit protocol end to end: a 3-node job over a
// dataset, with a trainer and an agent killed mid-run, processes every sample exactly once in
// the training lineage that produced the final model, and every restart resumes from a
// committed step.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { nodeLogPath } from '../cluster/local/localBackend.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { statusQuery } from '../workflows/job/messages.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { trainerPids, repoRoot } from './jobFixtures.ts';
import { startTestStack, type TestStack } from './stack.ts';

const SIZE = 2400;
const SHARD = 20;
const EPOCHS = 2;

function shardedSpec(home: string, name: string, flash = false) {
  const parsed = parseJobSpec({
    metadata: { name, user: 'tester' },
    spec: {
      nodes: { min: 1, max: 3, initial: 3 },
      nprocPerNode: 1,
      entrypoint: {
        command: 'python3',
        args: [
          'examples/trainer.py', '--step-time', '0.1', '--connect-timeout', '30', '--checkpoint-every', '4',
          '--samples', String(SIZE), '--loss-threshold', '10', '--record-dir', path.join(home, 'records', name),
        ],
        workdir: repoRoot,
      },
      dataset: { size: SIZE, shardSize: SHARD, epochs: EPOCHS, shuffle: true, seed: 3, maxRetries: 20 },
      faultTolerance: { maxProcessRestarts: 5, maxNodeRelaunches: 5, heartbeatInterval: '200ms', heartbeatTimeout: '10s' },
      rendezvous: { lastCallTimeout: '2s', joinTimeout: '60s' },
      checkpoint: { dir: path.join(home, 'checkpoints', name), keep: 2, flash },
    },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec;
}

interface Record {
  round: number;
  step: number;
  epoch: number;
  start: number;
  end: number;
}

function readRecords(folder: string): Record[] {
  return readdirSync(folder).flatMap((f) =>
    readFileSync(path.join(folder, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [round, step, epoch, , start, end] = line.split(' ').map(Number);
        return { round: round!, step: step!, epoch: epoch!, start: start!, end: end! };
      }),
  );
}

/** The records of the run that produced the final model: per step, the latest round that trained it. */
function lineage(records: Record[]): Record[] {
  const latest = new Map<number, number>();
  for (const r of records) latest.set(r.step, Math.max(latest.get(r.step) ?? 0, r.round));
  return records.filter((r) => r.round === latest.get(r.step));
}

describe('sharded jobs', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack('sharded jobs');
    await Promise.all([stack.startWorker(), stack.startApi()]);
  });
  afterAll(async () => {
    await stack?.close();
  });

  const stepAtLeast = (name: string, step: number) =>
    waitUntil(async () => {
      const s = await stack.client.workflow.getHandle(`job-${name}`).query(statusQuery);
      if (s.phase !== 'RUNNING') return undefined;
      const nodes = await stack.store.nodes.listByJob(name, { statuses: ['running'] });
      return nodes.length === 3 && nodes.every((n) => (n.step ?? 0) >= step) ? nodes : undefined;
    }, `job ${name} past step ${step}`, 120_000, 200);

  it.each([
    ['shard-kill', false],
    ['shard-kill-flash', true],
  ])('%s: processes every sample exactly once across trainer and agent kills, resuming from committed steps', async (name, flash) => {
    const handle = await submitJob(stack.client, shardedSpec(stack.home, name, flash), { taskQueue: stack.config.temporal.taskQueue });

    const nodes = await stepAtLeast(name, 9);
    const trainer = (await trainerPids(nodes.find((n) => n.nodeId === 1)!.pid!))[0];
    process.kill(trainer!, 'SIGKILL');
    const later = await stepAtLeast(name, 30);
    process.kill(-later.find((n) => n.nodeId === 2)!.pid!, 'SIGKILL');

    const result = await jobOutcome(handle);
    expect(result.phase).toBe('SUCCEEDED');
    expect(result.processRestarts).toBeGreaterThanOrEqual(1);
    expect(result.nodeRelaunches).toBe(1);

    // The ledger: every shard done, once.
    expect(await stack.store.shards.progress(name)).toMatchObject({ total: EPOCHS * (SIZE / SHARD), done: EPOCHS * (SIZE / SHARD), inFlight: 0 });

    // The data: in the lineage every (epoch, sample) appears exactly once, and all of them do.
    const records = lineage(readRecords(path.join(stack.home, 'records', name)));
    const seen = new Map<string, number>();
    for (const r of records) for (let i = r.start; i < r.end; i++) seen.set(`${r.epoch}:${i}`, (seen.get(`${r.epoch}:${i}`) ?? 0) + 1);
    expect([...seen.values()].filter((n) => n > 1)).toEqual([]);
    expect(seen.size).toBe(EPOCHS * SIZE);

    // Every resume was from a committed step; rewinds happened after the kills.
    const events = await stack.store.nodeEvents.listAfter(name, 0, 10_000);
    const committed = new Set(events.filter((e) => e.kind === 'checkpoint_committed').map((e) => (e.data as { step: number }).step));
    const rewinds = events.filter((e) => e.kind === 'ledger_rewound').map((e) => (e.data as { step: number }).step);
    expect(rewinds.filter((s) => s > 0).length).toBeGreaterThanOrEqual(2);
    for (const step of rewinds) if (step > 0) expect(committed).toContain(step);
    const resumed = [0, 1, 2].flatMap((n) =>
      [...readFileSync(nodeLogPath(stack.home, name, n), 'utf8').matchAll(/^(?:\[rank \d+\] )?ROVER_RESUME step=(\d+)$/gm)].map((m) => Number(m[1])),
    );
    expect(resumed.length).toBeGreaterThanOrEqual(2);
    for (const step of resumed) expect(committed).toContain(step);
    expect(events.filter((e) => e.kind === 'epoch_done').map((e) => e.data)).toContainEqual({ epoch: EPOCHS - 1 });
    expect(result.checkpointStep).toBe(Math.max(...committed));
    expect(result.epochsDone).toBe(EPOCHS);
    // Retention is the agents' work (the API deletes no file): once their deletion passes ran, no
    // file of a step older than the newest `keep` (2) commits is left, and the kept ones are.
    const kept = [...committed].sort((a, b) => b - a).slice(0, 2);
    const stepsOnDisk = () =>
      readdirSync(path.join(stack.home, 'checkpoints', name)).flatMap((f) => {
        const m = /^ckpt-(\d+)-rank\d+\.bin$/.exec(f);
        return m ? [Number(m[1])] : [];
      });
    await waitUntil(() => stepsOnDisk().every((s) => s >= kept.at(-1)!), `checkpoints of ${name} before step ${kept.at(-1)} deleted by the agents`, 30_000);
    expect(new Set(stepsOnDisk())).toEqual(new Set([...kept, ...stepsOnDisk().filter((s) => s > kept[0]!)]));
    if (flash) {
      // The agents persisted the checkpoints (the trainers only wrote shared memory) and freed it at the end.
      const agentLogs = [0, 1, 2].map((n) => readFileSync(nodeLogPath(stack.home, name, n), 'utf8')).join('\n');
      expect(agentLogs).toContain('flash checkpoint persisted');
      expect(existsSync(path.join('/dev/shm/rover', name))).toBe(false);
    }
  }, 400_000);
});
