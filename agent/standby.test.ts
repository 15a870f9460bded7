// Warm standby processes at the process-group level, with real Python processes: the trainer
// (test/trainers/warm_trainer.py) imports test/trainers/slow_import.py, which logs every import
// with its pid, so a test sees which process imported what, and when.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { occupiedProcessGroups } from '../common/procfs.ts';
import { captureHangEvidence } from './hangEvidence.ts';
import { ProcessGroup } from './processGroup.ts';
import { StandbyPool, type StandbyFailure, type StandbyLaunch } from './standby.ts';
import { lineSink, pidAlive } from './testing.ts';
import { waitUntil } from '../test/waits.ts';

const TRAINERS = fileURLToPath(new URL('../test/trainers/', import.meta.url));
const WARM_TRAINER = path.join(TRAINERS, 'warm_trainer.py');
const SIGTERM_TRAINER = path.join(TRAINERS, 'sigterm_recording_trainer.py');

interface Record {
  pid: number;
  pgid: number;
  sid: number;
  rank: string;
  world_size: string;
  round: string;
  imports: number[];
  started: number;
}
interface Import {
  module: string;
  pid: number;
  at: number;
  rank: string | null;
  local_rank: string | null;
  omp: string | null;
}

let dir: string;
const pools: StandbyPool[] = [];
const groups: ProcessGroup[] = [];
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rover-standby-'));
});
afterEach(async () => {
  await Promise.all(groups.splice(0).map((g) => g.stop(0)));
  await Promise.all(pools.splice(0).map((p) => p.close()));
  rmSync(dir, { recursive: true, force: true });
});

const jsonLines = <T>(file: string): T[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T) : []);
const imports = () => jsonLines<Import>(path.join(dir, 'imports.jsonl'));
const records = () => jsonLines<Record>(path.join(dir, 'started.jsonl'));

/** What a standby of `localRank` starts with: the trainer's environment less the round's variables. */
const startEnv = (localRank: number): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  SLOW_IMPORT_LOG: path.join(dir, 'imports.jsonl'),
  SLOW_IMPORT_SECONDS: '0.5',
  OMP_NUM_THREADS: '1',
  LOCAL_RANK: String(localRank),
});

function trainerLaunch(args: string[] = [], preload = ['slow_import'], command = 'python3'): StandbyLaunch {
  return { command, args: [WARM_TRAINER, '--record', path.join(dir, 'started.jsonl'), ...args], cwd: dir, preload };
}

function startPool(launch: StandbyLaunch, nproc = 2, failures: StandbyFailure[] = []): StandbyPool {
  const pool = new StandbyPool({ nproc, launch, startEnv, onFailure: (f) => failures.push(f) });
  pools.push(pool);
  return pool;
}

/** A round: one process per local rank with rank = base + local rank, taken from `pool` when one fits. */
function startGroup(pool: StandbyPool | undefined, launch: StandbyLaunch, round: { base: number; world: number; round: number }, nproc = 2) {
  const out = lineSink();
  const err = lineSink();
  const group = ProcessGroup.start({
    command: launch.command,
    args: [...launch.args],
    cwd: launch.cwd,
    preload: launch.preload,
    standbys: pool,
    trainers: Array.from({ length: nproc }, (_, i) => ({
      localRank: i,
      rank: round.base + i,
      env: { ...startEnv(i), RANK: String(round.base + i), WORLD_SIZE: String(round.world), ROVER_ROUND: String(round.round) },
    })),
    stdout: out.stream,
    stderr: err.stream,
  });
  groups.push(group);
  return { group, out, err };
}

const allReady = (pool: StandbyPool, n = 2) => {
  const waiting = pool.waiting();
  return waiting.length === n && waiting.every((s) => s.state === 'ready') ? waiting : undefined;
};
const recordsOf = (pids: number[]) => waitUntil(() => {
  const found = records().filter((r) => pids.includes(r.pid));
  return found.length === pids.length ? found : undefined;
}, `records of ${pids.join(', ')}`, 15_000);

describe('warm standby processes', () => {
  it('a restart runs on the standbys: no import on the critical path, and the new round\'s RANK and WORLD_SIZE', async () => {
    const launch = trainerLaunch();
    const pool = startPool(launch);
    const standbys = await waitUntil(() => allReady(pool), 'both standbys ready', 15_000);
    // Imported without the round's variables, with the start ones (OMP_NUM_THREADS, LOCAL_RANK).
    expect(imports().map((i) => [i.pid, i.rank, i.local_rank, i.omp]).sort()).toEqual(
      standbys.map((s) => [s.pid, null, String(s.localRank), '1']).sort(),
    );

    const first = startGroup(pool, launch, { base: 10, world: 2, round: 1 });
    const round1 = await recordsOf(standbys.map((s) => s.pid));
    for (const r of round1) {
      expect(r.imports).toHaveLength(1);
      expect(r.imports[0]).toBeLessThan(r.started);
      // Each trainer leads its own process group and session, as a cold one does.
      expect([r.pgid, r.sid]).toEqual([r.pid, r.pid]);
    }
    expect(round1.map((r) => [r.rank, r.world_size, r.round]).sort()).toEqual([['10', '2', '1'], ['11', '2', '1']]);

    // The new standbys warm once the trainers stepped; then a trainer is killed.
    const next = await waitUntil(() => {
      const w = allReady(pool);
      return w && w.every((s) => !standbys.some((o) => o.pid === s.pid)) ? w : undefined;
    }, 'replacement standbys ready', 15_000);
    process.kill(round1[0]!.pid, 'SIGKILL');
    expect(await first.group.outcome).toMatchObject({ kind: 'failed', failure: { signal: 'SIGKILL' } });
    await first.group.stop(5000);

    const restartedAt = Date.now() / 1000;
    const second = startGroup(pool, launch, { base: 20, world: 4, round: 2 });
    const round2 = await recordsOf(next.map((s) => s.pid));
    for (const r of round2) {
      expect(r.imports, 'slow_import imported once, before the restart').toHaveLength(1);
      expect(r.imports[0]).toBeLessThan(restartedAt);
    }
    expect(round2.map((r) => [r.rank, r.world_size, r.round]).sort()).toEqual([['20', '4', '2'], ['21', '4', '2']]);
    await waitUntil(() => second.out.lines().some((l) => l.startsWith('[rank 21] ROVER_STEP')), 'rank 21 stepping', 10_000);
    expect(second.group.latestStep()).toBeGreaterThan(0);
  });

  for (const form of ['script', 'module'] as const) {
    it(`a warm ${form} sees what a cold one sees: environment, argv, cwd, sys.path, __main__, stdin, open files, threads`, async () => {
      const args = ['--dump', 'DUMP', '--exit-code', '0'];
      const launchOf = (dump: string): StandbyLaunch =>
        form === 'script'
          ? { command: 'python3', args: [path.relative(dir, WARM_TRAINER), ...args.map((a) => (a === 'DUMP' ? dump : a))], cwd: dir, preload: ['slow_import'] }
          : { command: 'python3', args: ['-u', '-m', 'warm_trainer', ...args.map((a) => (a === 'DUMP' ? dump : a))], cwd: TRAINERS, preload: ['slow_import'] };
      const cold = launchOf(path.join(dir, 'cold.json'));
      const warm = launchOf(path.join(dir, 'warm.json'));
      const round = { base: 0, world: 1, round: 3 };
      expect(await startGroup(undefined, cold, round, 1).group.outcome).toEqual({ kind: 'succeeded' });
      const pool = startPool(warm, 1);
      await waitUntil(() => allReady(pool, 1), 'the standby ready', 15_000);
      // While it waits, the standby runs one thread and has no round variable.
      const [waiting] = pool.waiting();
      expect(readdirSync(`/proc/${waiting!.pid}/task`)).toHaveLength(1);
      expect(await startGroup(pool, warm, round, 1).group.outcome).toEqual({ kind: 'succeeded' });
      const [coldDump, warmDump] = ['cold.json', 'warm.json'].map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { argv: string[] });
      warmDump!.argv = warmDump!.argv.map((a) => a.replace('warm.json', 'cold.json'));
      expect(warmDump).toEqual(coldDump);
      expect(coldDump).toMatchObject({ stdin: '/dev/null', tasks: 1, env: { RANK: '0', ROVER_ROUND: '3', LOCAL_RANK: '0' } });
    });
  }

  it('a change of preload is honoured: the stale standbys go, the ranks start cold, the next standbys import the new list', async () => {
    const pool = startPool(trainerLaunch());
    const old = await waitUntil(() => allReady(pool), 'both standbys ready', 15_000);
    const changed = trainerLaunch([], ['slow_import', 'fast_import']);
    const startedAt = Date.now() / 1000;
    const { group } = startGroup(pool, changed, { base: 0, world: 2, round: 1 });
    const cold = await waitUntil(() => (records().length === 2 ? records() : undefined), 'both trainers started', 15_000);
    expect(cold.map((r) => r.pid)).not.toContain(old[0]!.pid);
    for (const r of cold) expect(r.imports[0]).toBeGreaterThan(startedAt); // imported by the cold process itself
    await waitUntil(() => old.every((s) => !pidAlive(s.pid)), 'the stale standbys gone', 10_000);

    const fresh = await waitUntil(() => {
      const w = allReady(pool);
      return w?.every((s) => s.preload.includes('fast_import')) ? w : undefined;
    }, 'standbys with the new preload list', 15_000);
    for (const s of fresh) expect(imports().filter((i) => i.pid === s.pid).map((i) => i.module)).toEqual(['slow_import', 'fast_import']);
    await group.stop(5000);
    startGroup(pool, changed, { base: 0, world: 2, round: 2 });
    await recordsOf(fresh.map((s) => s.pid));
  });

  it('a standby that imported torch has imported torch._dynamo too, which torch.optim would import after the go', async () => {
    // A stand-in torch package that records its imports (the real one: bench/restart.bench.ts).
    const fake = path.join(dir, 'site');
    mkdirSync(path.join(fake, 'torch'), { recursive: true });
    writeFileSync(path.join(fake, 'torch', '__init__.py'), '');
    writeFileSync(path.join(fake, 'torch', '_dynamo.py'), 'from slow_import import record\nrecord(__name__)\n');
    const pool = new StandbyPool({ nproc: 1, launch: trainerLaunch([], ['torch']), startEnv: (localRank) => ({ ...startEnv(localRank), PYTHONPATH: fake }) });
    pools.push(pool);
    const [standby] = await waitUntil(() => allReady(pool, 1), 'the standby ready', 15_000);
    expect(imports().filter((i) => i.module === 'torch._dynamo').map((i) => [i.pid, i.rank])).toEqual([[standby!.pid, null]]);
  });

  it('a standby killed while it waits is replaced', async () => {
    const pool = startPool(trainerLaunch(), 1);
    const [first] = await waitUntil(() => allReady(pool, 1), 'the standby ready', 15_000);
    process.kill(first!.pid, 'SIGKILL');
    const [second] = await waitUntil(() => {
      const w = allReady(pool, 1);
      return w?.[0]?.pid !== first!.pid ? w : undefined;
    }, 'a new standby ready', 15_000);
    expect(second!.pid).not.toBe(first!.pid);
    expect(pidAlive(first!.pid)).toBe(false);
  });

  it('close() leaves no standby behind, ready or still importing', async () => {
    const pool = startPool(trainerLaunch(), 2);
    const [ready] = await waitUntil(() => allReady(pool), 'both standbys ready', 15_000);
    // A second pool whose standbys are still importing a slow module.
    const importing = new StandbyPool({ nproc: 1, launch: trainerLaunch(), startEnv: (r) => ({ ...startEnv(r), SLOW_IMPORT_SECONDS: '30' }) });
    const [busy] = importing.waiting();
    expect(busy?.state).toBe('warming');
    await Promise.all([pool.close(), importing.close()]);
    const pids = [ready!.pid, busy!.pid];
    expect(pids.filter(pidAlive)).toEqual([]);
    expect(occupiedProcessGroups(pids)).toEqual([]);
    expect(pool.waiting()).toEqual([]);
  });

  it('a preload that does not import: one standby_failed, and the ranks start cold and train', async () => {
    const failures: StandbyFailure[] = [];
    const launch = trainerLaunch(['--steps', '2'], ['no_such_module_here']);
    const pool = startPool(launch, 2, failures);
    await waitUntil(() => failures.length > 0, 'the failure', 15_000);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ preload: ['no_such_module_here'], reason: expect.stringContaining("ModuleNotFoundError: No module named 'no_such_module_here'") });
    expect(failures[0]!.stderrTail).toContain('Traceback');
    await waitUntil(() => pool.waiting().length === 0, 'no standby left', 10_000);
    expect(await startGroup(pool, launch, { base: 0, world: 2, round: 1 }).group.outcome).toEqual({ kind: 'succeeded' });
    expect(records()).toHaveLength(2);
    expect(pool.waiting()).toEqual([]);
  });

  it('exits as a cold start does: the exit code, and a traceback without the standby\'s frames', async () => {
    for (const [args, exit] of [[['--exit-code', '7'], 7], [['--exit-message', 'bad config'], 1], [['--raise'], 1]] as const) {
      const launch = trainerLaunch([...args]);
      const pool = startPool(launch, 1);
      await waitUntil(() => allReady(pool, 1), 'the standby ready', 15_000);
      const { group } = startGroup(pool, launch, { base: 0, world: 1, round: 1 }, 1);
      const outcome = await group.outcome;
      expect(outcome).toMatchObject({ kind: 'failed', failure: { exitCode: exit, signal: null } });
      if (outcome.kind !== 'failed' || exit !== 1) continue;
      if (args[0] === '--exit-message') {
        expect(outcome.failure.stderrTail).toBe('bad config');
        continue;
      }
      const tail = outcome.failure.stderrTail.split('\n');
      expect(tail[0]).toBe('Traceback (most recent call last):');
      expect(tail[1]).toContain(`File "${WARM_TRAINER}"`);
      expect(tail.at(-1)).toBe('RuntimeError: boom at start');
      expect(outcome.failure.stderrTail).not.toContain('standby.py');
    }
  });

  it('a warm trainer ends as the interpreter ends a cold one: non-daemon threads, atexit handlers, open files', async () => {
    const chores = (start: 'cold' | 'warm') => path.join(dir, `${start}-chores.txt`);
    const launchOf = (start: 'cold' | 'warm'): StandbyLaunch => trainerLaunch(['--exit-chores', chores(start), '--exit-code', '3']);
    const round = { base: 0, world: 1, round: 1 };
    expect(await startGroup(undefined, launchOf('cold'), round, 1).group.outcome).toMatchObject({ kind: 'failed', failure: { exitCode: 3 } });
    const pool = startPool(launchOf('warm'), 1);
    await waitUntil(() => allReady(pool, 1), 'the standby ready', 15_000);
    const warm = startGroup(pool, launchOf('warm'), round, 1).group;
    expect(warm.warmRanks()).toEqual([0]);
    expect(await warm.outcome).toMatchObject({ kind: 'failed', failure: { exitCode: 3 } });
    for (const start of ['cold', 'warm'] as const) {
      expect(readFileSync(chores(start), 'utf8'), `${start}: the thread ended before the atexit handlers ran`).toBe('thread\natexit\n');
      expect(readFileSync(`${chores(start)}.open`, 'utf8'), `${start}: a file left open was flushed`).toBe('still in the buffer');
    }
  });

  it("a warm trainer's hang stacks show its own frames, none of the standby that ran its script", async () => {
    const launch = trainerLaunch(['--faulthandler']);
    const pool = startPool(launch, 1);
    await waitUntil(() => allReady(pool, 1), 'the standby ready', 15_000);
    const { group, out } = startGroup(pool, launch, { base: 0, world: 1, round: 1 }, 1);
    await waitUntil(() => out.lines().includes('[rank 0] ROVER_STEP 1'), 'stepping', 10_000);
    expect(group.warmRanks()).toEqual([0]);
    const [stack] = (await captureHangEvidence(group, '/nonexistent/py-spy')).stacks;
    expect(stack).toMatchObject({ method: 'faulthandler' });
    expect(stack!.stack).toContain(`File "${WARM_TRAINER}"`);
    expect(stack!.stack).not.toContain('standby.py');
  });

  it('a warm trainer gets exactly one SIGTERM on stop, and its stacks can be read for hang evidence', async () => {
    const sigterms = path.join(dir, 'sigterm.log');
    const launch: StandbyLaunch = { command: 'python3', args: [SIGTERM_TRAINER, '--sigterm-log', sigterms, '--save-time', '0.3'], cwd: dir, preload: ['slow_import'] };
    const pool = startPool(launch);
    const standbys = await waitUntil(() => allReady(pool), 'both standbys ready', 15_000);
    const { group, out } = startGroup(pool, launch, { base: 0, world: 2, round: 1 });
    await waitUntil(() => ['[rank 0] ROVER_STEP 1', '[rank 1] ROVER_STEP 1'].every((l) => out.lines().includes(l)), 'both stepping', 10_000);
    expect(group.livePids().map((p) => p.pid).sort()).toEqual(standbys.map((s) => s.pid).sort());
    const evidence = await captureHangEvidence(group, '/nonexistent/py-spy');
    expect(evidence.stacks.map((s) => s.pid).sort()).toEqual(standbys.map((s) => s.pid).sort());
    await group.stop(20_000);
    const lines = readFileSync(sigterms, 'utf8').split('\n').filter(Boolean);
    for (const s of standbys) expect(lines.filter((l) => l.endsWith(` ${s.pid}`))).toEqual([`term ${s.pid}`, `saved ${s.pid}`]);
  });
});
