// Real PyTorch end to end (gloo, CPU; examples/torch_ddp.py on rover_torch): 2 nodes × 2
// processes with flash checkpoints and the shard ledger, the faulty job's trainers behind a user's
// bash launch script. A trainer SIGKILLed at a step drawn from a printed seed costs only the steps
// since the latest committed checkpoint, read back from shared memory; an agent SIGKILLed
// relaunches its node, whose ranks read the committed state from storage; and the final model of
// that run is bit-for-bit the model of an undisturbed run with the same seed and data.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { scaleUpdate } from '../workflows/job/messages.ts';
import { nodeLogPath } from '../cluster/local/localBackend.ts';
import { findNodeProcesses } from '../cluster/local/processes.ts';
import { mulberry32 } from '../common/shardPlan.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { repoRoot } from './jobFixtures.ts';
import { startTestStack, type TestStack } from './stack.ts';
import { torchJobSpec, torchPythonOrSkip } from './torchFixtures.ts';

const run = promisify(execFile);
// 2400 samples in shards of 16: 150 shards, 4 per step, 38 steps; a checkpoint every 8.
const DATASET = { size: 2400, shardSize: 16 };
const EVERY = 8;
/** Draws which trainer dies, and at which step; TORCH_KILL_SEED=<n> replays a run. */
const seed = Number(process.env.TORCH_KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));

interface Restore {
  node: number;
  incarnation: number;
  rank: number;
  step: number;
  source: string;
}

describe('real PyTorch jobs', () => {
  let stack: TestStack;
  let python: string | undefined;
  let missingInCi: unknown;

  beforeAll(async () => {
    try {
      python = torchPythonOrSkip();
    } catch (err) {
      missingInCi = err;
    }
    if (!python) return;
    stack = await startTestStack('torch jobs');
    await Promise.all([stack.startWorker(), stack.startApi()]);
  });
  afterAll(async () => {
    await stack?.close();
  });

  const needTorch = (ctx: TestContext) => {
    if (missingInCi) throw missingInCi;
    if (!python) ctx.skip();
  };
  const ddpJob = (name: string, wrapped: boolean) =>
    torchJobSpec(stack.home, name, python!, {
      script: 'examples/torch_ddp.py',
      args: ['--step-time', '0.1', '--checkpoint-every', String(EVERY), '--final-params', path.join(stack.home, `${name}.pt`)],
      dataset: DATASET,
      wrapped,
    });
  /** Steps a rank printed (ROVER_STEP) in its node's log, in order, up to the first line matching `until`. */
  const stepsOf = (job: string, node: number, rank: number, until?: RegExp): number[] => {
    const steps: number[] = [];
    for (const line of readFileSync(nodeLogPath(stack.home, job, node), 'utf8').split('\n')) {
      if (!line.startsWith(`[rank ${rank}] `)) continue;
      if (until?.test(line)) break;
      const step = /^\[rank \d+\] ROVER_STEP (\d+) /.exec(line)?.[1];
      if (step) steps.push(Number(step));
    }
    return steps;
  };
  /** The python training process of one rank of a local node (its wrapper, bash, is its parent). */
  const trainerOfRank = (job: string, node: number, rank: number): number => {
    const processes = findNodeProcesses({ jobId: job, nodeId: node, incarnation: 0, home: stack.home }) ?? [];
    const trainer = processes.find((p) => p.comm.startsWith('python') && readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0').includes(`RANK=${rank}`));
    if (!trainer) throw new Error(`no python process of rank ${rank} on node ${node} of ${job}: ${JSON.stringify(processes)}`);
    return trainer.pid;
  };
  /** The job's checkpoint_restored events: where each rank found the state it resumed from. */
  const restores = async (name: string): Promise<Restore[]> =>
    (await stack.store.nodeEvents.listAfter(name, 0, 10_000))
      .filter((e) => e.kind === 'checkpoint_restored')
      .map((e) => ({ node: e.nodeId!, incarnation: e.incarnation!, rank: e.rank!, ...(e.data as { step: number; source: string }) }));
  const committed = async (name: string) =>
    (await stack.store.nodeEvents.listAfter(name, 0, 10_000)).filter((e) => e.kind === 'checkpoint_committed').map((e) => (e.data as { step: number }).step);

  it(`resumes a trainer killed at a random step from shared memory and a killed agent from storage, ending with the undisturbed run's exact parameters (TORCH_KILL_SEED=${seed})`, async (ctx) => {
    needTorch(ctx);
    const submit = (name: string, wrapped: boolean) => submitJob(stack.client, ddpJob(name, wrapped), { taskQueue: stack.config.temporal.taskQueue });
    const [calm, faulty] = await Promise.all([submit('ddp-calm', false), submit('ddp-faults', true)]);

    // A trainer of node 1 dies at a step between two checkpoints, both drawn from the seed: every
    // rank resumes from the latest step committed before the kill, read from its node's shared memory.
    const random = mulberry32(seed);
    const victim = 2 + Math.floor(random() * 2);
    const first = await waitUntil(async () => Math.max(0, ...(await committed('ddp-faults'))), 'a committed checkpoint', 180_000, 50);
    const killAt = first + 1 + Math.floor(random() * (EVERY - 1));
    await waitUntil(() => stepsOf('ddp-faults', 1, victim).some((s) => s >= killAt), `rank ${victim} to reach step ${killAt}`, 180_000, 20);
    process.kill(trainerOfRank('ddp-faults', 1, victim), 'SIGKILL');
    const afterKill = await waitUntil(async () => {
      const all = await restores('ddp-faults');
      return all.length >= 4 ? all : undefined;
    }, 'all 4 ranks to resume', 120_000, 200);
    // The wrapper saw its trainer killed (bash: 128 + SIGKILL) and passed that on; the last step the
    // trainer printed before it is the step it died at.
    const exited = new RegExp(`^\\[rank ${victim}\\] wrapper: rank ${victim} trainer exited with status (\\d+)$`, 'm').exec(readFileSync(nodeLogPath(stack.home, 'ddp-faults', 1), 'utf8'));
    expect(exited?.[1]).toBe('137');
    const killedAt = Math.max(...stepsOf('ddp-faults', 1, victim, /wrapper: .* exited with status/));
    expect(killedAt).toBeGreaterThanOrEqual(killAt);
    const resumeStep = Math.max(...(await committed('ddp-faults')).filter((s) => s <= killedAt));
    expect(resumeStep).toBeGreaterThanOrEqual(first);
    expect(afterKill.map((r) => [r.node, r.rank, r.step, r.source]).sort()).toEqual([[0, 0, resumeStep, 'shm'], [0, 1, resumeStep, 'shm'], [1, 2, resumeStep, 'shm'], [1, 3, resumeStep, 'shm']]);

    // Then node 1's agent dies after the next commit: the relaunched node has no shared memory of it.
    await waitUntil(async () => (await committed('ddp-faults')).some((s) => s > resumeStep), 'a commit after the resume', 180_000, 50);
    const agent = (await stack.store.nodes.listByJob('ddp-faults', { statuses: ['running'] })).find((n) => n.nodeId === 1)!;
    process.kill(-agent.pid!, 'SIGKILL');

    const [calmResult, faultyResult] = await Promise.all([jobOutcome(calm), jobOutcome(faulty)]);
    expect(calmResult.phase).toBe('SUCCEEDED');
    expect(faultyResult.phase).toBe('SUCCEEDED');
    expect(faultyResult.nodeRelaunches).toBe(1);
    // Each rank of the relaunched node first resumes from storage. A loaded CI machine once
    // restarted that group in place again afterwards, which resumes it a second time: only the
    // first start is the relaunch's (the parameters below still prove nothing was lost or redone).
    const relaunched = (await restores('ddp-faults')).filter((r) => r.node === 1 && r.incarnation === 1);
    const firstOfRank = [2, 3].map((rank) => relaunched.find((r) => r.rank === rank));
    expect(firstOfRank.map((r) => r?.source)).toEqual(['storage', 'storage']);
    expect(firstOfRank.every((r) => r!.step > resumeStep)).toBe(true);
    expect(await committed('ddp-faults')).toContain(firstOfRank[0]!.step);

    // Exactly-once data and complete state capture together: the same parameters, bit for bit.
    const compare = `import sys, torch
a, b = torch.load(sys.argv[1]), torch.load(sys.argv[2])
assert a.keys() == b.keys(), (a.keys(), b.keys())
print(" ".join(f"{k}={torch.equal(a[k], b[k])}" for k in a))`;
    const { stdout } = await run(python!, ['-c', compare, path.join(stack.home, 'ddp-calm.pt'), path.join(stack.home, 'ddp-faults.pt')]);
    expect(stdout.trim()).toBe('0.weight=True 0.bias=True 3.weight=True 3.bias=True');
  }, 480_000);

  it('runs the same script unchanged under plain torchrun, where it checkpoints to a folder and resumes from it exactly', async (ctx) => {
    needTorch(ctx);
    // No Rover anywhere: a clean environment, a folder of its own (the checkpoints go to ./.rover).
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'rover-torchrun-'));
    ctx.onTestFinished(() => rmSync(cwd, { recursive: true, force: true }));
    const env = { PATH: process.env.PATH!, HOME: process.env.HOME!, OMP_NUM_THREADS: '1' };
    // --tee 3: torchrun copies each rank's output line by line, prefixed [default<local rank>]:,
    // so the two ranks' lines cannot run into each other in the one stdout.
    const script = path.join(repoRoot, 'examples/torch_ddp.py');
    const torchrun = async () =>
      (await run(path.join(path.dirname(python!), 'torchrun'), ['--standalone', '--nproc-per-node', '2', '--tee', '3', script, '--samples', '1024', '--step-time', '0', '--checkpoint-every', '5'], { cwd, env, timeout: 240_000 })).stdout;
    /** Per rank, the first group of each of its lines that is all of `pattern`. */
    const perRank = (out: string, pattern: string) => [0, 1].map((rank) => [...out.matchAll(new RegExp(`^\\[default${rank}\\]:${pattern}$`, 'gm'))].map((m) => m[1]!));
    // 1024 samples, 2 ranks × 32 per step: 16 steps, checkpoints at 5, 10 and 15.
    const first = await torchrun();
    expect(perRank(first, 'ROVER_STEP (\\d+) .*').map((steps) => steps.length)).toEqual([16, 16]);
    expect(perRank(first, 'ROVER_DONE rank=\\d steps=(\\d+)')).toEqual([['16'], ['16']]);
    // Run again in the same folder: both ranks resume from step 15 and redo step 16 exactly.
    const again = await torchrun();
    expect(perRank(again, 'ROVER_RESUME (step=\\d+ source=\\w+)')).toEqual([['step=15 source=storage'], ['step=15 source=storage']]);
    const lossAt16 = (out: string) => perRank(out, 'ROVER_STEP 16 loss=(\\S+) .*');
    expect(lossAt16(again)).toEqual(lossAt16(first));
    expect(lossAt16(first).flat()).toHaveLength(2);
  }, 480_000);

  it('loads FSDP sharded checkpoints into the new world size when the job shrinks to 1 node and grows back to 2', async (ctx) => {
    needTorch(ctx);
    const name = 'fsdp-resize';
    const spec = torchJobSpec(stack.home, name, python!, {
      script: 'examples/torch_fsdp.py',
      args: ['--step-time', '0.1', '--checkpoint-every', '6'],
      nodes: { min: 1, max: 2, initial: 2 },
      dataset: { size: 3200, shardSize: 16 },
    });
    const handle = await submitJob(stack.client, spec, { taskQueue: stack.config.temporal.taskQueue });
    const logs = () => [0, 1].map((n) => readFileSync(nodeLogPath(stack.home, name, n), 'utf8')).join('\n');
    const fsdpResumes = () =>
      [...logs().matchAll(/^\[rank 0\] ROVER_RESUME step=(\d+) source=storage world=(\d+) params=(\S+)$/gm)].map((m) => ({
        step: Number(m[1]),
        world: Number(m[2]),
        params: m[3]!,
      }));
    const savedParams = (step: number) => new RegExp(`^\\[rank \\d+\\] ROVER_CHECKPOINT step=${step} params=(\\S+)$`, 'm').exec(logs())?.[1];

    await waitUntil(async () => (await committed(name)).length > 0, 'a checkpoint of 4 ranks', 180_000, 100);
    expect((await handle.executeUpdate(scaleUpdate, { args: [{ nodes: 1 }] })).targetNodes).toBe(1);
    const shrunk = await waitUntil(() => fsdpResumes().find((r) => r.world === 2), 'a resume in a world of 2', 180_000, 200);
    await waitUntil(async () => (await committed(name)).some((s) => s > shrunk.step), 'a checkpoint of 2 ranks', 180_000, 100);
    expect((await handle.executeUpdate(scaleUpdate, { args: [{ nodes: 2 }] })).targetNodes).toBe(2);
    const grown = await waitUntil(() => fsdpResumes().find((r) => r.world === 4 && r.step > shrunk.step), 'a resume in a world of 4', 180_000, 200);

    expect((await jobOutcome(handle)).phase).toBe('SUCCEEDED');
    // Each resume loaded, resharded, exactly the parameters the other world size saved at that step.
    const steps = await committed(name);
    for (const r of [shrunk, grown]) {
      expect(steps).toContain(r.step);
      expect(r.params).toBe(savedParams(r.step));
    }
    // Every shard of the data set counted once across the resizes.
    expect(await stack.store.shards.progress(name)).toMatchObject({ total: 200, done: 200, inFlight: 0 });
  }, 480_000);
});
