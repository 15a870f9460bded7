// The example trainer is what Rover's tests and demo run, so its collective must really work:
// four processes started by hand with the torchrun environment, as the agent would start them.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../test/waits.ts';
import {
  freePort,
  killAll,
  startTrainers,
  stepsOf,
  waitForExit,
  type TrainerLaunch,
  type TrainerProcess,
} from './collective_test_harness.ts';

const EXIT_DEADLINE_MS = 20_000;

let checkpointDir: string;
let started: TrainerProcess[] = [];

beforeEach(() => {
  checkpointDir = mkdtempSync(path.join(tmpdir(), 'rover-trainer-'));
});

afterEach(() => {
  killAll(started);
  started = [];
  rmSync(checkpointDir, { recursive: true, force: true });
});

function ranks(worldSize: number): TrainerLaunch[] {
  return Array.from({ length: worldSize }, (_, rank) => ({ rank, worldSize }));
}

async function launch(launches: TrainerLaunch[], args: string[], restartCount = 0): Promise<TrainerProcess[]> {
  const runs = startTrainers({
    launches,
    port: await freePort(),
    runId: `test-${randomUUID()}`,
    restartCount,
    args: ['--step-time', '0.01', '--checkpoint-dir', checkpointDir, ...args],
  });
  started.push(...runs);
  return runs;
}

function doneLine(run: TrainerProcess): { steps: number; w: string; b: string } {
  const m = /^ROVER_DONE rank=(\d+) steps=(\d+) w=(\S+) b=(\S+)$/m.exec(run.stdout);
  if (!m) throw new Error(`rank ${run.rank} printed no ROVER_DONE line:\n${run.stdout}\n${run.stderr}`);
  expect(Number(m[1])).toBe(run.rank);
  return { steps: Number(m[2]), w: m[3]!, b: m[4]! };
}

/** Local IPv4 addresses (hex, as /proc/net/tcp writes them) with a socket listening on `port`. */
function listeningAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[3] === '0A' && f[1]?.endsWith(`:${hexPort}`))
    .map((f) => f[1]!.split(':')[0]!);
}

describe('examples/trainer.py', () => {
  it('has rank 0 listen on MASTER_ADDR only, never on every interface', async () => {
    const port = await freePort();
    // A world of 2 with only rank 0 started: it listens and waits for its peer.
    const runs = startTrainers({
      launches: [{ rank: 0, worldSize: 2 }], port, runId: `test-${randomUUID()}`,
      args: ['--step-time', '0.01', '--checkpoint-dir', checkpointDir, '--steps', '5', '--connect-timeout', '20'],
    });
    started.push(...runs);
    await waitUntil(() => listeningAddresses(port).length > 0, `rank 0 listening on port ${port}`, EXIT_DEADLINE_MS);
    expect(listeningAddresses(port)).toEqual(['0100007F']); // 127.0.0.1, the harness's MASTER_ADDR
  });

  it('trains four ranks in lockstep and finishes with identical weights', async () => {
    const runs = await launch(ranks(4), ['--steps', '30']);
    expect(await waitForExit(runs, EXIT_DEADLINE_MS)).toEqual([0, 0, 0, 0]);

    for (const run of runs) {
      expect(run.stdout).toMatch(new RegExp(`^ROVER_START rank=${run.rank} world_size=4 local_rank=${run.rank} restart=0$`, 'm'));
      expect(stepsOf(run)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    }
    const done = runs.map(doneLine);
    expect(done.every((d) => d.steps === 30)).toBe(true);
    expect(new Set(done.map((d) => `${d.w} ${d.b}`)).size).toBe(1);
    // The all-reduced loss is the same number on every rank, and it went down.
    const losses = runs.map((r) => [...r.stdout.matchAll(/^ROVER_STEP \d+ loss=(\S+) compute=\S+$/gm)].map((m) => Number(m[1])));
    expect(new Set(losses.map((l) => l.join(','))).size).toBe(1);
    expect(losses[0]!.at(-1)!).toBeLessThan(losses[0]![0]! / 100);
    expect(runs[0]!.stdout).toMatch(/^ROVER_CHECKPOINT step=30 path=.*checkpoint\.json$/m);
  });

  it('fails loudly when one process was told a different WORLD_SIZE', async () => {
    const launches = ranks(4).map((l) => (l.rank === 2 ? { ...l, worldSize: 3 } : l));
    const runs = await launch(launches, ['--steps', '30', '--connect-timeout', '3']);
    const codes = await waitForExit(runs, EXIT_DEADLINE_MS);

    expect(codes.every((c) => c !== 0)).toBe(true);
    expect(runs[0]!.stderr).toContain('rank 2 was started with WORLD_SIZE=3 but rank 0 has WORLD_SIZE=4');
    expect(runs[2]!.stderr).toContain('rank 0 stopped the run');
    expect(runs.some((r) => stepsOf(r).length > 0)).toBe(false);
  });

  it('fails loudly when two processes claim the same RANK', async () => {
    const runs = await launch([0, 1, 2, 2].map((rank) => ({ rank, worldSize: 4 })), ['--steps', '30', '--connect-timeout', '3']);
    const codes = await waitForExit(runs, EXIT_DEADLINE_MS);

    expect(codes.every((c) => c !== 0)).toBe(true);
    expect(runs[0]!.stderr).toContain('two processes announced RANK=2');
  });

  it('stops every rank promptly when rank 1 crashes at step 3', async () => {
    const runs = await launch(ranks(4), ['--steps', '1000', '--crash-at-step', '3', '--crash-rank', '1']);
    const codes = await waitForExit(runs, EXIT_DEADLINE_MS);

    expect(codes[1]).toBe(1);
    expect(runs[1]!.stderr).toMatch(/Traceback[\s\S]*RuntimeError: injected crash at step 3 on rank 1/);
    for (const rank of [0, 2, 3]) expect(codes[rank]).not.toBe(0);
    expect(runs[0]!.stderr).toContain('rank 1 disconnected at step 3');
    expect(runs[2]!.stderr).toContain('rank 0 stopped the run');
    for (const run of runs) expect(stepsOf(run)).toEqual([1, 2]);
  });

  it('exits 143 on SIGTERM while hung, and the other rank notices and exits', async () => {
    const runs = await launch(ranks(2), ['--steps', '1000', '--hang-at-step', '2', '--crash-rank', '1']);
    const hung = runs[1]!;
    await waitUntil(() => hung.stderr.includes('hanging at step 2'), 'rank 1 to hang', EXIT_DEADLINE_MS);
    hung.proc.kill('SIGTERM');
    const codes = await waitForExit(runs, EXIT_DEADLINE_MS);

    expect(codes).toEqual([1, 143]);
    expect(runs[0]!.stderr).toContain('rank 1 disconnected at step 2');
  });

  it('resumes from the checkpoint of an earlier run', async () => {
    const first = await launch(ranks(2), ['--steps', '10']);
    expect(await waitForExit(first, EXIT_DEADLINE_MS)).toEqual([0, 0]);

    const second = await launch(ranks(2), ['--steps', '20']);
    expect(await waitForExit(second, EXIT_DEADLINE_MS)).toEqual([0, 0]);
    for (const run of second) {
      expect(run.stdout).toMatch(/^ROVER_RESUME step=10$/m);
      expect(stepsOf(run)).toEqual(Array.from({ length: 10 }, (_, i) => i + 11));
    }
    expect(new Set(second.map((r) => JSON.stringify(doneLine(r)))).size).toBe(1);
  });

  it('with --crash-once crashes the first attempt only; the restart resumes and finishes', async () => {
    const args = ['--steps', '12', '--crash-at-step', '8', '--crash-once'];
    const first = await launch(ranks(2), args);
    expect((await waitForExit(first, EXIT_DEADLINE_MS))[0]).toBe(1);
    expect(existsSync(path.join(checkpointDir, 'fault-injected-rank0-step8'))).toBe(true);

    const restarted = await launch(ranks(2), args, 1);
    expect(await waitForExit(restarted, EXIT_DEADLINE_MS)).toEqual([0, 0]);
    expect(restarted[0]!.stdout).toMatch(/^ROVER_START rank=0 world_size=2 local_rank=0 restart=1$/m);
    expect(stepsOf(restarted[0]!)[0]).toBe(6); // the last checkpoint before the crash was step 5
  });

  it('fails every attempt with --fail-always', async () => {
    const runs = await launch(ranks(2), ['--steps', '10', '--fail-always']);
    expect(await waitForExit(runs, EXIT_DEADLINE_MS)).toEqual([1, 1]);
    expect(runs[0]!.stderr).toContain('injected failure at step 1 on rank 0 (--fail-always)');
  });

  it('exits with the code given by --exit-code at --exit-at-step', async () => {
    const runs = await launch(ranks(2), ['--steps', '10', '--exit-at-step', '4', '--exit-code', '137', '--crash-rank', '1']);
    expect(await waitForExit(runs, EXIT_DEADLINE_MS)).toEqual([1, 137]);
  });
});
