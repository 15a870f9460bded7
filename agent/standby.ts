// Warm standby processes (issue 13). For a Python entrypoint with spec.entrypoint.preload, the
// agent keeps one process per local rank that has already started the interpreter and imported
// those modules (agent/standby.py), so a restart does not pay for them on its critical path. A
// round's ProcessGroup takes a rank's standby instead of starting python cold and hands it the
// round's environment, argv and working directory (the go); the standby runs the script as
// __main__ in its own process. From the go on it is a trainer like any other: it leads its own
// process group and session (spawned detached, like a cold trainer), gets one SIGTERM, its output
// is forwarded and parsed, its exit reported, its stacks read for hang evidence. It ends faster
// than a cold one: the interpreter's exit without the module teardown (agent/standby.py
// _exit_as_python), so the next round does not wait a second per torch process for it.
//
// Which variables are valid when: a standby starts with its trainer's environment less the
// round's variables (agent/torchrunEnv.ts standbyEnv), so everything a library may read at import
// (the spec's env: OMP_NUM_THREADS, CUDA_VISIBLE_DEVICES, …; LOCAL_RANK, LOCAL_WORLD_SIZE; the
// host entries; the node's identity and token) is there while the preload modules import. At the
// go it gets the round's variables (RANK, WORLD_SIZE, GROUP_RANK, GROUP_WORLD_SIZE, ROLE_RANK,
// ROLE_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT, ROVER_ROUND) and the
// group's ROVER_* additions (ROVER_RESUME_STEP, ROVER_CONFIG_VERSION), and its os.environ becomes
// exactly what a cold trainer's would be. A standby whose start environment or launch (command,
// args, working directory, preload list, memory limit) differs from what the round asks for is
// stale: that rank starts cold and a new standby is warmed for the new launch.
//
// Life cycle: one per local rank, warmed when the pool is made (the agent's start, after its node
// check) and again for a rank whose standby a group took once that trainer printed its first
// ROVER_STEP, ended, or ran REFILL_AFTER_MS (so warming never competes for the CPU with a
// restart's own start). A standby
// killed while it waits is replaced at once; one whose preload fails (or that dies warming
// WARM_ATTEMPTS times in a row) is given up with a standby_failed event, and the ranks start cold.
// close() kills every waiting standby; a standby whose agent died reads end of file and exits.
import type { Logger } from 'pino';
import { waitUntilGroupsEmpty } from '../common/procfs.ts';
import { parsePythonCommand } from '../common/pythonCommand.ts';
import type { AgentSettings } from './settings.ts';
import { Standby, type StandbyLaunch } from './standbyProcess.ts';
import { ROUND_ENV_NAMES, standbyEnv } from './torchrunEnv.ts';

export type { Standby, StandbyLaunch } from './standbyProcess.ts';

/** A trainer that took a standby gets a new one after its first step, its end, or this long. */
export const REFILL_AFTER_MS = 10_000;
/** Deaths while warming (without a preload error) before the pool gives up on warming. */
const WARM_ATTEMPTS = 3;
const KILL_WAIT_MS = 5000;

/** A launch whose standbys could not be warmed: every rank starts cold from now on. */
export interface StandbyFailure {
  localRank: number;
  pid: number | null;
  preload: string[];
  reason: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string;
}

export interface StandbyPoolOptions {
  nproc: number;
  launch: StandbyLaunch;
  /** The environment a standby of this local rank starts with (agent/torchrunEnv.ts standbyEnv). */
  startEnv(localRank: number): NodeJS.ProcessEnv;
  log?: Pick<Logger, 'info' | 'warn'>;
  onFailure?(failure: StandbyFailure): void;
}

/** How the agent starts each training process: its entrypoint, the preload list, its share of the node's memory. */
export function trainerLaunch(settings: AgentSettings): StandbyLaunch {
  const { entrypoint, memoryLimitBytes, nprocPerNode } = settings;
  return {
    command: entrypoint.command,
    args: entrypoint.args,
    cwd: entrypoint.workdir,
    preload: entrypoint.preload ?? [],
    memoryLimitBytes: memoryLimitBytes ? memoryLimitBytes / nprocPerNode : undefined,
  };
}

/**
 * The agent's pool: undefined without spec.entrypoint.preload. An entrypoint that is not
 * `python script|-m module` (the spec refuses those with a preload list) warms nothing.
 */
export function standbyPool(
  settings: AgentSettings,
  baseEnv: NodeJS.ProcessEnv,
  log: Pick<Logger, 'info' | 'warn'>,
  onFailure: (failure: StandbyFailure) => void,
): StandbyPool | undefined {
  const launch = trainerLaunch(settings);
  if (!launch.preload.length) return undefined;
  if (!parsePythonCommand(launch.command, launch.args)) {
    log.warn({ command: launch.command, args: launch.args }, 'spec.entrypoint.preload needs `python script …` or `python -m module …`: every start is cold');
    return undefined;
  }
  return new StandbyPool({ nproc: settings.nprocPerNode, launch, startEnv: (localRank) => standbyEnv(settings, localRank, baseEnv), log, onFailure });
}

const launchKey = (l: StandbyLaunch) => JSON.stringify([l.command, l.args, l.cwd ?? null, l.preload, l.memoryLimitBytes ?? null]);

/** Why a standby started with `start` cannot become a trainer with `env`; undefined when it can. */
export function envMismatch(start: NodeJS.ProcessEnv, env: NodeJS.ProcessEnv): string | undefined {
  for (const [name, value] of Object.entries(start)) if (env[name] !== value) return `${name} differs from what the standby started with`;
  for (const name of Object.keys(env)) {
    if (!(name in start) && !ROUND_ENV_NAMES.includes(name) && !name.startsWith('ROVER_')) return `${name} is set only at the go`;
  }
  return undefined;
}

/** One standby per local rank for a Python entrypoint; see the header. */
export class StandbyPool {
  private readonly slots: (Standby | undefined)[];
  /** Standbys not taken by a trainer and not yet gone: close() kills them. */
  private readonly idle = new Set<Standby>();
  private launch: StandbyLaunch;
  /** Launch (key) warming was given up for. */
  private gaveUp: string | null = null;
  private readonly deathsWarming: number[];
  private closed = false;

  constructor(private readonly opts: StandbyPoolOptions) {
    this.launch = opts.launch;
    this.slots = Array.from({ length: opts.nproc }, () => undefined);
    this.deathsWarming = this.slots.map(() => 0);
    for (let r = 0; r < opts.nproc; r++) this.warm(r);
  }

  /**
   * The standby of `localRank` if it fits `launch` and `env` (then the caller must start() it),
   * else undefined and the rank starts cold. Either way a standby for `launch` is warmed for this
   * rank once `refillWhen` settles.
   */
  take(localRank: number, launch: StandbyLaunch, env: NodeJS.ProcessEnv, refillWhen: Promise<unknown>): Standby | undefined {
    if (this.closed) return undefined;
    this.launch = launch;
    const refill = () => this.warm(localRank);
    void refillWhen.then(refill, refill);
    const s = this.slots[localRank];
    this.slots[localRank] = undefined;
    if (!s) return undefined;
    const stale = launchKey(s.launch) !== launchKey(launch) ? 'its launch (command, args, cwd, preload, memory limit) changed' : envMismatch(s.startEnv, env);
    if (stale || !s.alive || s.state === 'failed') {
      if (stale) this.opts.log?.info({ localRank, pid: s.pid, why: stale }, 'standby is stale: starting this rank cold, warming a new one');
      this.discard(s);
      return undefined;
    }
    s.taken = true;
    this.idle.delete(s);
    return s;
  }

  /** The standbys waiting now (tests, benchmarks). */
  waiting(): { localRank: number; pid: number; state: Standby['state']; preload: readonly string[] }[] {
    return this.slots.flatMap((s) => (s?.pid !== undefined && s.alive ? [{ localRank: s.localRank, pid: s.pid, state: s.state, preload: s.launch.preload }] : []));
  }

  /** Kills every standby not taken, and waits until their process groups are empty. */
  async close(): Promise<void> {
    this.closed = true;
    this.slots.fill(undefined);
    const all = [...this.idle];
    for (const s of all) s.kill();
    const groups = all.flatMap((s) => (s.pid === undefined ? [] : [s.pid]));
    await waitUntilGroupsEmpty(groups, KILL_WAIT_MS);
    await Promise.all(all.map((s) => s.exited));
  }

  private warm(localRank: number): void {
    const launch = this.launch;
    if (this.closed || this.slots[localRank] || this.gaveUp === launchKey(launch)) return;
    const python = parsePythonCommand(launch.command, launch.args);
    if (!python || launch.preload.length === 0) return;
    const s = new Standby(localRank, launch, python, this.opts.startEnv(localRank), (changed) => this.onState(changed));
    this.slots[localRank] = s;
    this.idle.add(s);
    void s.exited.then((exit) => this.onExit(s, exit));
  }

  private onState(s: Standby): void {
    if (s.state === 'ready') {
      this.deathsWarming[s.localRank] = 0;
      this.opts.log?.info({ localRank: s.localRank, pid: s.pid, ms: Date.now() - s.startedAt, preload: s.launch.preload }, 'standby ready');
      return;
    }
    // A preload that fails to import fails again: give up on this launch, start cold.
    this.fail(s, s.failure, { exitCode: null, signal: null });
    if (!s.taken) this.discard(s);
  }

  private onExit(s: Standby, exit: { exitCode: number | null; signal: NodeJS.Signals | null }): void {
    this.idle.delete(s);
    if (s.taken || this.closed || this.slots[s.localRank] !== s) return;
    this.slots[s.localRank] = undefined;
    const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.exitCode}`;
    if (s.state === 'ready') {
      this.opts.log?.warn({ localRank: s.localRank, pid: s.pid, how }, 'standby died while waiting: replacing it');
      this.warm(s.localRank);
      return;
    }
    if (s.state === 'failed') return;
    const deaths = ++this.deathsWarming[s.localRank]!;
    if (deaths < WARM_ATTEMPTS && s.pid !== undefined) {
      this.opts.log?.warn({ localRank: s.localRank, pid: s.pid, how, deaths }, 'standby died while warming: trying again');
      this.warm(s.localRank);
      return;
    }
    this.fail(s, s.failure || `the standby ${how} while importing ${s.launch.preload.join(', ')}`, exit);
  }

  private fail(s: Standby, reason: string, exit: { exitCode: number | null; signal: NodeJS.Signals | null }): void {
    const key = launchKey(s.launch);
    const first = this.gaveUp !== key;
    this.gaveUp = key;
    for (const [r, other] of this.slots.entries()) {
      if (other && launchKey(other.launch) === key) {
        this.slots[r] = undefined;
        this.discard(other);
      }
    }
    if (!first) return;
    this.opts.log?.warn({ localRank: s.localRank, pid: s.pid, reason }, 'standby could not be warmed: training processes start cold');
    this.opts.onFailure?.({
      localRank: s.localRank,
      pid: s.pid ?? null,
      preload: [...s.launch.preload],
      reason,
      ...exit,
      stderrTail: s.stderrTail.join('\n'),
    });
  }

  private discard(s: Standby): void {
    if (s.taken) return;
    s.kill();
  }
}
