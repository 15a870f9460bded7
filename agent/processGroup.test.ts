import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProcessGroup, type ProcessGroupOptions } from './processGroup.ts';
import { lineSink, pidAlive } from './testing.ts';
import { waitUntil } from '../test/waits.ts';

const TRAINERS = fileURLToPath(new URL('../test/trainers/', import.meta.url));
/** bash → sh → python3: test/trainers/sigterm_recording_trainer.py behind two wrappers. */
const WRAPPED_TWICE = path.join(TRAINERS, 'wrapped_twice.sh');
/** sh that leaves `sleep 300` behind in its process group and exits. */
const WRAPPED_BACKGROUND = path.join(TRAINERS, 'wrapped_background.sh');

const groups: ProcessGroup[] = [];
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rover-process-group-'));
});
afterEach(async () => {
  await Promise.all(groups.splice(0).map((g) => g.stop(0)));
  rmSync(dir, { recursive: true, force: true });
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
        exitedAt: expect.any(Number),
        step: null,
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
    await waitUntil(() => out.lines().length === 2, 'both processes ready', 10_000);
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
    await waitUntil(() => out.lines().includes('[rank 10] ready'), 'process ready', 10_000);
    const pid = group.livePids()[0]!.pid;
    await group.stop(300);
    expect(out.lines()).toContain('[rank 10] ignored');
    expect(pidAlive(pid)).toBe(false);
    expect(group.livePids()).toEqual([]);
  });

  describe('process trees', () => {
    /** Starts `nproc` trainers as `command args` with RANK set, output kept. */
    function startTree(command: string, args: string[], nproc: number, extra: Partial<ProcessGroupOptions> = {}) {
      const out = lineSink();
      const group = ProcessGroup.start({
        command,
        args,
        trainers: Array.from({ length: nproc }, (_, i) => ({ localRank: i, rank: i, env: { PATH: process.env.PATH, RANK: String(i) } })),
        stdout: out.stream,
        stderr: lineSink().stream,
        ...extra,
      });
      groups.push(group);
      return { group, out };
    }

    it('stops every process of a trainer behind two wrappers: by pid and by process group', async () => {
      const record = path.join(dir, 'started.jsonl');
      const { group } = startTree('bash', [WRAPPED_TWICE, '--record', record, '--step-time', '0.05'], 2);
      const leaders = group.livePids().map((p) => p.pid).sort();
      const pythons = await waitUntil(() => {
        const started = readRecords(record);
        return started.length === 2 ? started : undefined;
      }, 'both trainers to start', 10_000);
      // Each leader (bash) leads its own group and session, and the python behind sh is in it.
      for (const leader of leaders) expect(processTable().find((p) => p.pid === leader)).toMatchObject({ pgid: leader, sid: leader });
      expect(pythons.map((p) => p.pgid).sort()).toEqual(leaders);
      const tree = processTable().filter((p) => leaders.includes(p.pgid));
      // bash, sh and python3 per trainer.
      expect(tree.map((p) => p.command).sort()).toEqual(['bash', 'bash', 'python3', 'python3', 'sh', 'sh']);

      await group.stop(10_000);
      for (const { pid } of tree) expect(running(pid), `pid ${pid}`).toBe(false);
      expect(processTable().filter((p) => leaders.includes(p.pgid) && !p.stat.startsWith('Z'))).toEqual([]);
      expect(await group.outcome).toEqual({ kind: 'stopped' });
    });

    it('delivers SIGTERM exactly once to a trainer that takes a moment to save, and needs no SIGKILL', async () => {
      const log = path.join(dir, 'sigterm.log');
      const { group, out } = startTree('bash', [WRAPPED_TWICE, '--sigterm-log', log, '--save-time', '0.5'], 2);
      await waitUntil(() => ['[rank 0] ROVER_STEP 1', '[rank 1] ROVER_STEP 1'].every((l) => out.lines().includes(l)), 'both trainers stepping', 10_000);
      const started = Date.now();
      await group.stop(20_000);
      // Well inside the grace: the trainers' own exits ended the stop, not a SIGKILL.
      expect(Date.now() - started).toBeLessThan(10_000);
      const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      const pids = [...new Set(lines.map((l) => l.split(' ')[1]))];
      expect(pids).toHaveLength(2);
      for (const pid of pids) expect(lines.filter((l) => l.endsWith(` ${pid}`)), `pid ${pid}`).toEqual([`term ${pid}`, `saved ${pid}`]);
    });

    it('stops what a successful process left in its group before reporting success', async () => {
      const { group, out } = startTree('sh', [WRAPPED_BACKGROUND, '0'], 1, { shutdownGraceMs: 20_000 });
      const started = Date.now();
      expect(await group.outcome).toEqual({ kind: 'succeeded' });
      expect(Date.now() - started).toBeLessThan(10_000);
      const helper = helperPid(out.lines());
      expect(running(helper)).toBe(false);
    });

    it('SIGKILLs a leftover that ignores SIGTERM once the grace is over', async () => {
      const { group, out } = startTree('sh', [WRAPPED_BACKGROUND, '0', 'ignore-sigterm'], 1, { shutdownGraceMs: 300 });
      expect(await group.outcome).toEqual({ kind: 'succeeded' });
      expect(running(helperPid(out.lines()))).toBe(false);
    });

    it('stops what a failed process left in its group when the round is stopped', async () => {
      const { group, out } = startTree('sh', [WRAPPED_BACKGROUND, '3'], 1);
      expect(await group.outcome).toMatchObject({ kind: 'failed', failure: { exitCode: 3 } });
      const helper = helperPid(out.lines());
      expect(running(helper)).toBe(true);
      const leader = processTable().find((p) => p.pid === helper)!.pgid;
      await group.stop(10_000);
      expect(running(helper)).toBe(false);
      expect(processTable().filter((p) => p.pgid === leader && !p.stat.startsWith('Z'))).toEqual([]);
    });
  });
});

interface ProcessRow {
  pid: number;
  pgid: number;
  sid: number;
  stat: string;
  command: string;
}

/** Every process on the host, from ps. */
function processTable(): ProcessRow[] {
  const stdout = execFileSync('ps', ['-e', '-o', 'pid=,pgid=,sid=,stat=,comm='], { encoding: 'utf8' });
  return stdout.split('\n').filter((l) => l.trim()).map((line) => {
    const [pid, pgid, sid, stat, command] = line.trim().split(/\s+/);
    return { pid: Number(pid), pgid: Number(pgid), sid: Number(sid), stat: stat!, command: command! };
  });
}

/** True while the process exists and is not a zombie waiting for its parent (or init) to reap it. */
function running(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    const text = readFileSync(stat, 'utf8');
    return !text.slice(text.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

function readRecords(file: string): { rank: number; pid: number; ppid: number; pgid: number; sid: number }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { rank: number; pid: number; ppid: number; pgid: number; sid: number });
}

function helperPid(lines: string[]): number {
  const line = lines.find((l) => / helper \d+$/.test(l));
  if (!line) throw new Error(`no helper pid in ${JSON.stringify(lines)}`);
  return Number(line.split(' ').at(-1));
}
