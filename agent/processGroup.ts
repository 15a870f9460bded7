// Supervises the training processes of one node for one rendezvous round, like torchrun's
// process context: start them all, forward their output, notice the first failure, stop them all.
//
// Each training process leads its own process group (and session), so whatever it starts (a
// wrapper's python, a data-loader worker, a background helper) shares the group and goes down with
// it. Every signal is sent to the whole group, once: SIGTERM, the grace period, SIGKILL to what is
// left. A group outlives its leader when a wrapper leaves a background child behind; the round's
// end (success, failure, stop, restart) stops such leftovers too.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { occupiedProcessGroups, waitUntilGroupsEmpty } from '../common/procfs.ts';
import { withMemoryLimit } from './memoryLimit.ts';
import { REFILL_AFTER_MS, type StandbyPool } from './standby.ts';
import type { Standby } from './standbyProcess.ts';

export interface TrainerSpec {
  localRank: number;
  /** Global rank, used to prefix forwarded output. */
  rank: number;
  /** The complete environment of the process. */
  env: NodeJS.ProcessEnv;
}

export interface ProcessGroupOptions {
  command: string;
  args: readonly string[];
  cwd?: string;
  trainers: TrainerSpec[];
  /** Where `[rank R] ` prefixed output goes. Default: this process's stdout/stderr. */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Lines of stderr kept per process for failure reports. Default 50. */
  tailLines?: number;
  /** Data-memory limit per process (bytes), enforced with prlimit; unset: none. */
  memoryLimitBytes?: number | undefined;
  /**
   * SIGTERM → SIGKILL grace for what a process leaves behind in its group when every process
   * succeeded (stop() takes its own). Default 10 s, the agent's default shutdown grace.
   */
  shutdownGraceMs?: number;
  /**
   * spec.entrypoint.preload: with `standbys`, each process is taken from its local rank's warm
   * standby (agent/standby.ts) when one fits, else started cold.
   */
  preload?: readonly string[];
  standbys?: StandbyPool | undefined;
}

export interface TrainerExit {
  localRank: number;
  rank: number;
  /** Null when the process was killed by a signal or could not start. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string;
  /** When the process exited (epoch ms, this host's clock): which of a round's failures came first. */
  exitedAt: number;
  /** The process's last `ROVER_STEP` (or resume step); null before its first. */
  step: number | null;
}

export type GroupOutcome =
  /** Every process exited with code 0. */
  | { kind: 'succeeded' }
  /** The first process that exited non-zero, by a signal, or failed to start. */
  | { kind: 'failed'; failure: TrainerExit }
  /** stop() was called before either of the above. */
  | { kind: 'stopped' };

const STEP_LINE = /^ROVER_STEP\s+(\d+)(?:\s|$)/;
/** The trainer's own compute time of that step, without waiting on peers: straggler detection. */
const COMPUTE_FIELD = /\scompute=(\d+(?:\.\d+)?(?:e-?\d+)?)(?:\s|$)/;
/** A trainer resuming from a checkpoint is at that step before it prints its first ROVER_STEP. */
const RESUME_LINE = /^ROVER_RESUME\s+step=(\d+)(?:\s|$)/;
/** A save under way: hang detection holds off until ROVER_CHECKPOINT (or the next step). */
const SAVE_BEGIN_LINE = /^ROVER_CHECKPOINT_BEGIN(?:\s|$)/;
const SAVE_END_LINE = /^(ROVER_CHECKPOINT|ROVER_STEP)(?:\s|$)/;
const MAX_TAIL_LINE_CHARS = 4096;
/** How long to wait for a dead process's pipes to drain; a grandchild may hold them open. */
const PIPE_DRAIN_MS = 500;
const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** After SIGKILL, how long the kernel gets to take the processes away before stop() gives up waiting. */
const AFTER_KILL_WAIT_MS = 5000;

class Trainer {
  readonly child: ChildProcess;
  /** Taken from a warm standby rather than started cold. */
  readonly warm: boolean = false;
  private past: () => void = () => {};
  step: number | null = null;
  /** Seconds of `compute=` on the latest ROVER_STEP line that had one. */
  computeSeconds: number | null = null;
  /** Set once the process exited and its output was read. */
  exit: TrainerExit | null = null;
  /** Between ROVER_CHECKPOINT_BEGIN and ROVER_CHECKPOINT. */
  saving = false;
  /** Receives stderr lines while evidence is being captured. */
  stderrTap: ((line: string) => void) | null = null;
  readonly tail: string[] = [];
  /** Resolves once the process exited (or never started) and its output was read. */
  readonly finished: Promise<TrainerExit>;

  constructor(
    readonly spec: TrainerSpec,
    opts: ProcessGroupOptions,
  ) {
    const tailLines = opts.tailLines ?? 50;
    const out = opts.stdout ?? process.stdout;
    const err = opts.stderr ?? process.stderr;
    const prefix = `[rank ${spec.rank}] `;
    const onStdout = (line: string) => {
      out.write(prefix + line + '\n');
      const step = STEP_LINE.exec(line);
      if (step) {
        this.step = Number(step[1]);
        const compute = COMPUTE_FIELD.exec(line);
        if (compute) this.computeSeconds = Number(compute[1]);
        this.past();
      }
      const resumed = this.step === null ? RESUME_LINE.exec(line) : null;
      if (resumed) this.step = Number(resumed[1]);
      if (SAVE_BEGIN_LINE.test(line)) this.saving = true;
      else if (SAVE_END_LINE.test(line)) this.saving = false;
    };
    const onStderr = (line: string) => {
      err.write(prefix + line + '\n');
      this.stderrTap?.(line);
      this.remember(line, tailLines);
    };
    const launch = { command: opts.command, args: opts.args, cwd: opts.cwd, preload: opts.preload ?? [], memoryLimitBytes: opts.memoryLimitBytes };
    let standby: Standby | undefined;
    if (opts.standbys && launch.preload.length) {
      // The rank's next standby warms once this process is past its start (first step, end, or a while).
      const pastStart = new Promise<void>((resolve) => (this.past = resolve));
      setTimeout(this.past, REFILL_AFTER_MS).unref();
      standby = opts.standbys.take(spec.localRank, launch, spec.env, pastStart);
    }
    if (standby) {
      this.child = standby.child;
      this.warm = true;
      standby.start(spec.env, onStdout, onStderr);
    } else {
      const cmd = withMemoryLimit(opts.command, opts.args, opts.memoryLimitBytes);
      this.child = spawn(cmd.command, cmd.args, {
        cwd: opts.cwd,
        env: spec.env,
        // setsid(): the process leads a new session and process group (id = its pid), which holds
        // everything it starts, so one kill(-pid) reaches a wrapper and the trainer behind it. Its
        // own session also keeps signals meant for the agent (a terminal's Ctrl-C, a kill of the
        // agent's group) away from it: the agent forwards them, once.
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      createInterface({ input: this.child.stdout!, crlfDelay: Infinity }).on('line', onStdout);
      createInterface({ input: this.child.stderr!, crlfDelay: Infinity }).on('line', onStderr);
    }
    this.finished = new Promise((resolve) => {
      let settled = false;
      let drainTimer: NodeJS.Timeout | undefined;
      let exitedAt: number | undefined;
      const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(drainTimer);
        const tail = this.tail.join('\n');
        this.past();
        this.exit = { localRank: spec.localRank, rank: spec.rank, exitCode, signal, stderrTail: tail, exitedAt: exitedAt ?? Date.now(), step: this.step };
        resolve(this.exit);
      };
      this.child.on('error', (error) => {
        // Only a failed spawn ends the trainer here; a failed kill() of a live process changes nothing.
        if (this.child.pid !== undefined) return;
        const where = opts.cwd ? ` in ${opts.cwd}` : '';
        this.remember(`failed to start ${opts.command}${where}: ${error.message}`, tailLines);
        finish(null, null);
      });
      this.child.on('exit', (code, signal) => {
        exitedAt = Date.now();
        drainTimer = setTimeout(() => finish(code, signal), PIPE_DRAIN_MS);
      });
      this.child.on('close', (code, signal) => finish(code, signal));
    });
  }

  get alive(): boolean {
    return this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Id of the process group this process leads; undefined when it never started. */
  get processGroupId(): number | undefined {
    return this.child.pid;
  }

  private remember(line: string, tailLines: number): void {
    this.tail.push(line.length > MAX_TAIL_LINE_CHARS ? line.slice(0, MAX_TAIL_LINE_CHARS) + '…' : line);
    if (this.tail.length > tailLines) this.tail.shift();
  }
}

export class ProcessGroup {
  /** Settles once: all succeeded, the first failure, or stopped. */
  readonly outcome: Promise<GroupOutcome>;
  private readonly trainers: Trainer[];
  /** Set once the outcome is known (it may still wait for leftovers to be stopped). */
  private decided = false;
  /** The one teardown of every process group; shared by stop() and a success's clean-up. */
  private teardown: Promise<void> | null = null;
  private settle!: (outcome: GroupOutcome) => void;

  private constructor(opts: ProcessGroupOptions) {
    this.outcome = new Promise((resolve) => (this.settle = resolve));
    this.trainers = opts.trainers.map((spec) => new Trainer(spec, opts));
    const graceMs = opts.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
    let succeeded = 0;
    for (const trainer of this.trainers) {
      void trainer.finished.then((exit) => {
        if (this.decided) return;
        if (exit.exitCode !== 0) {
          this.decided = true;
          this.settle({ kind: 'failed', failure: exit });
        } else if (++succeeded === this.trainers.length) {
          this.decided = true;
          // The round is over: what the processes left running in their groups goes with it.
          void this.tearDown(graceMs).then(() => this.settle({ kind: 'succeeded' }));
        }
      });
    }
  }

  static start(opts: ProcessGroupOptions): ProcessGroup {
    return new ProcessGroup(opts);
  }

  /** Local ranks whose process was taken from a warm standby (agent/standby.ts). */
  warmRanks(): number[] {
    return this.trainers.filter((t) => t.warm).map((t) => t.spec.localRank);
  }

  /** Highest `ROVER_STEP <n>` any process printed, or null before the first. */
  latestStep(): number | null {
    const steps = this.trainers.map((t) => t.step).filter((s): s is number => s !== null);
    return steps.length ? Math.max(...steps) : null;
  }

  /** Slowest process's latest per-step compute seconds (`compute=` on ROVER_STEP), or null. */
  latestComputeSeconds(): number | null {
    const secs = this.trainers.map((t) => t.computeSeconds).filter((s): s is number => s !== null);
    return secs.length ? Math.max(...secs) : null;
  }

  /**
   * Failures of processes that ended on their own, waiting up to `ms` for the rest to end. The
   * first process to fail is often a victim (a peer that lost its connection), not the cause.
   * `until` ends the wait early (the agent heard the culprit is elsewhere).
   */
  async failuresWithin(ms: number, until?: Promise<unknown>): Promise<TrainerExit[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    await Promise.race([Promise.all(this.trainers.map((t) => t.finished)), timeout, ...(until ? [until] : [])]);
    clearTimeout(timer);
    return this.trainers.flatMap((t) => (t.exit && t.exit.exitCode !== 0 ? [t.exit] : []));
  }

  /** Whether a process is saving a checkpoint right now. */
  checkpointing(): boolean {
    return this.trainers.some((t) => t.alive && t.saving);
  }

  /** The live leaders (pid = process group id) with their last stderr lines. */
  liveTrainers(): { localRank: number; rank: number; pid: number; stderrTail: string[] }[] {
    return this.trainers
      .filter((t) => t.alive)
      .map((t) => ({ localRank: t.spec.localRank, rank: t.spec.rank, pid: t.child.pid!, stderrTail: [...t.tail] }));
  }

  /** Runs `trigger`, then collects each process's stderr lines until `ms` passed with no new line. */
  async captureStderr(trigger: () => void, ms: number): Promise<Map<number, string[]>> {
    const lines = new Map<number, string[]>();
    let last = Date.now();
    for (const t of this.trainers) {
      t.stderrTap = (line) => {
        lines.set(t.spec.localRank, [...(lines.get(t.spec.localRank) ?? []), line]);
        last = Date.now();
      };
    }
    try {
      trigger();
      const started = Date.now();
      const quiet = () => Date.now() - last >= ms && (lines.size > 0 || Date.now() - started >= ms * 3);
      while (!quiet() && Date.now() - started < ms * 10) {
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      for (const t of this.trainers) t.stderrTap = null;
    }
    return lines;
  }

  /** Leaders still running; each pid is also its process group's id (usage sums over the group). */
  livePids(): { localRank: number; pid: number }[] {
    return this.trainers.filter((t) => t.alive).map((t) => ({ localRank: t.spec.localRank, pid: t.child.pid! }));
  }

  /**
   * SIGTERM every process group that still has a running process, SIGKILL what is left of them
   * after `graceMs`, and wait until every process of every group is gone. Each group gets each
   * signal at most once, however often stop() is called.
   */
  async stop(graceMs: number): Promise<void> {
    if (!this.decided) {
      this.decided = true;
      this.settle({ kind: 'stopped' });
    }
    await this.tearDown(graceMs);
  }

  private tearDown(graceMs: number): Promise<void> {
    this.teardown ??= this.signalAndWait(graceMs);
    return this.teardown;
  }

  private async signalAndWait(graceMs: number): Promise<void> {
    const groupIds = this.trainers.flatMap((t) => (t.processGroupId === undefined ? [] : [t.processGroupId]));
    // A group can empty before its leader's exit event arrives: wait for both.
    const leadersDone = () => this.trainers.every((t) => t.exit !== null);
    for (const id of occupiedProcessGroups(groupIds)) signalProcessGroup(id, 'SIGTERM');
    if (!(await waitUntilGroupsEmpty(groupIds, graceMs, leadersDone))) {
      for (const id of occupiedProcessGroups(groupIds)) signalProcessGroup(id, 'SIGKILL');
      await waitUntilGroupsEmpty(groupIds, AFTER_KILL_WAIT_MS, leadersDone);
    }
    // The exit statuses and the last output lines are read before anyone looks at them.
    await Promise.all(this.trainers.map((t) => t.finished));
  }
}

/** Sends a signal to every process of a group; a group that emptied meanwhile is no error. */
function signalProcessGroup(groupId: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-groupId, signal);
  } catch {
    // ESRCH: nothing left in it
  }
}
