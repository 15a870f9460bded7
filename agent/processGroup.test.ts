import { afterEach, describe, expect, it } from 'vitest';
import { ProcessGroup, type ProcessGroupOptions } from './processGroup.ts';
import { lineSink, pidAlive, waitUntil } from './testing.ts';

const groups: ProcessGroup[] = [];
afterEach(async () => {
  await Promise.all(groups.splice(0).map((g) => g.stop(0)));
});

/** Starts `script` under node once per entry of `envs`, with local rank = index and rank = 10 + index. */
function startNode(script: string, envs: Record<string, string>[], extra: Partial<ProcessGroupOptions> = {}) {
  const out = lineSink();
  const err = lineSink();
  const group = ProcessGroup.start({
    command: process.execPath,
    args: ['-e', script],
    trainers: envs.map((env, i) => ({ localRank: i, rank: 10 + i, env: { PATH: process.env.PATH, ...env } })),
    stdout: out.stream,
    stderr: err.stream,
    ...extra,
  });
  groups.push(group);
  return { group, out, err };
}

describe('ProcessGroup', () => {
  it('passes each process its environment and prefixes its output with its rank', async () => {
    const { group, out, err } = startNode('console.log("hello from", process.env.WHO); console.error("warn")', [
      { WHO: 'a' },
      { WHO: 'b' },
    ]);
    expect(await group.outcome).toEqual({ kind: 'succeeded' });
    expect(out.lines().sort()).toEqual(['[rank 10] hello from a', '[rank 11] hello from b']);
    expect(err.lines().sort()).toEqual(['[rank 10] warn', '[rank 11] warn']);
  });

  it('tracks the highest ROVER_STEP printed by any process', async () => {
    const script = 'for (const s of process.env.STEPS.split(",")) console.log("ROVER_STEP " + s); console.log("ROVER_STEP x")';
    const { group } = startNode(script, [{ STEPS: '1,2,7' }, { STEPS: '3,4' }]);
    expect(group.latestStep()).toBeNull();
    await group.outcome;
    expect(group.latestStep()).toBe(7);
  });

  it('keeps the slowest process\'s latest compute= seconds from its ROVER_STEP lines', async () => {
    const script = 'for (const l of process.env.LINES.split(",")) console.log(l)';
    const { group } = startNode(script, [
      { LINES: 'ROVER_STEP 1 loss=0.5 compute=0.9,ROVER_STEP 2 loss=0.4 compute=0.1' },
      { LINES: 'ROVER_STEP 1 loss=0.5 compute=0.25,ROVER_STEP 2 loss=0.4' },
    ]);
    expect(group.latestComputeSeconds()).toBeNull();
    await group.outcome;
    expect(group.latestComputeSeconds()).toBe(0.25);
  });

  it('reports the first failure with its exit code and the tail of its stderr', async () => {
    const script = `
      if (process.env.CRASH) {
        for (let i = 0; i < 80; i++) console.error('line ' + i);
        process.exit(3);
      }
      setInterval(() => {}, 1000);`;
    const { group } = startNode(script, [{}, { CRASH: '1' }], { tailLines: 5 });
    const outcome = await group.outcome;
    expect(outcome).toEqual({
      kind: 'failed',
      failure: {
        localRank: 1,
        rank: 11,
        exitCode: 3,
        signal: null,
        stderrTail: ['line 75', 'line 76', 'line 77', 'line 78', 'line 79'].join('\n'),
      },
    });
    const [survivor] = group.livePids();
    expect(survivor?.localRank).toBe(0);
    await group.stop(5000);
    expect(pidAlive(survivor!.pid)).toBe(false);
  });

  it('reports a process killed by a signal', async () => {
    const { group } = startNode('process.kill(process.pid, "SIGSEGV")', [{}]);
    expect(await group.outcome).toMatchObject({ kind: 'failed', failure: { exitCode: null, signal: 'SIGSEGV' } });
  });

  it('reports a command that cannot start as a failure', async () => {
    const group = ProcessGroup.start({
      command: '/nonexistent/trainer',
      args: [],
      trainers: [{ localRank: 0, rank: 0, env: {} }],
      stderr: lineSink().stream,
    });
    groups.push(group);
    expect(await group.outcome).toMatchObject({
      kind: 'failed',
      failure: { exitCode: null, signal: null, stderrTail: expect.stringContaining('failed to start /nonexistent/trainer') },
    });
  });

  it('stops gracefully with SIGTERM', async () => {
    const script = 'process.on("SIGTERM", () => { console.log("bye"); process.exit(0) }); console.log("ready"); setInterval(() => {}, 1000)';
    const { group, out } = startNode(script, [{}, {}]);
    await waitUntil(() => out.lines().length === 2, 10_000, 'both processes ready');
    const pids = group.livePids().map((p) => p.pid);
    const started = Date.now();
    await group.stop(30_000);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(out.lines().filter((l) => l.endsWith('bye'))).toHaveLength(2);
    expect(pids.filter(pidAlive)).toEqual([]);
    expect(await group.outcome).toEqual({ kind: 'stopped' });
  });

  it('escalates to SIGKILL for a process that ignores SIGTERM', async () => {
    const script = 'process.on("SIGTERM", () => console.log("ignored")); console.log("ready"); setInterval(() => {}, 1000)';
    const { group, out } = startNode(script, [{}]);
    await waitUntil(() => out.lines().includes('[rank 10] ready'), 10_000, 'process ready');
    const pid = group.livePids()[0]!.pid;
    await group.stop(300);
    expect(out.lines()).toContain('[rank 10] ignored');
    expect(pidAlive(pid)).toBe(false);
    expect(group.livePids()).toEqual([]);
  });
});
