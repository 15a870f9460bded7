// One warm standby process (agent/standby.ts keeps one per local rank): agent/standby.py started
// with the entrypoint's interpreter and options, detached like a cold trainer (it leads its own
// process group and session), with the trainer's environment less the round's variables. It
// imports the preload modules and says `ready` (or `failed …`) on fd 3; start() hands it the go
// on stdin and from then on its output goes to its trainer's handlers, beginning with what it
// printed while it imported.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { repoRoot } from '../common/repoRoot.ts';
import type { PythonCommand } from '../common/pythonCommand.ts';
import { withMemoryLimit } from './memoryLimit.ts';

/** Beside this file in the sources; the build in dist/ runs the one in the sources too (tsc copies no .py). */
export const STANDBY_BOOTSTRAP = path.join(repoRoot, 'agent', 'standby.py');
/** Lines of output a standby keeps before its go (import warnings), replayed to its trainer. */
const MAX_BUFFERED_LINES = 200;
const STDERR_TAIL_LINES = 50;

/** What a rank's standby runs: the entrypoint as the trainers run it cold, and what to import first. */
export interface StandbyLaunch {
  command: string;
  args: readonly string[];
  cwd?: string | undefined;
  preload: readonly string[];
  memoryLimitBytes?: number | undefined;
}

/** One warm process of a local rank: warming, ready, or failed to import; taken by one trainer at most. */
export class Standby {
  readonly child: ChildProcess;
  state: 'warming' | 'ready' | 'failed' = 'warming';
  failure = '';
  taken = false;
  readonly startedAt = Date.now();
  readonly stderrTail: string[] = [];
  /** Resolves when the process exited or could not start. */
  readonly exited: Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>;
  private buffered: { stderr: boolean; line: string }[] = [];
  private sink: ((line: string, stderr: boolean) => void) | null = null;

  constructor(
    readonly localRank: number,
    readonly launch: StandbyLaunch,
    private readonly python: PythonCommand,
    readonly startEnv: NodeJS.ProcessEnv,
    onState: (s: Standby) => void,
  ) {
    const { options, target } = python;
    const args = [...options, STANDBY_BOOTSTRAP, target.kind, target.kind === 'script' ? target.path : target.name, ...launch.preload];
    const cmd = withMemoryLimit(launch.command, args, launch.memoryLimitBytes);
    // detached: setsid(), as for a cold trainer (agent/processGroup.ts). fd 3 says ready or failed.
    this.child = spawn(cmd.command, cmd.args, { cwd: launch.cwd, env: startEnv, detached: true, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    this.child.stdin!.on('error', () => {}); // EPIPE of a go to a process that died: its exit says the rest
    const lines = (stream: Readable, stderr: boolean) =>
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => this.output(line, stderr));
    lines(this.child.stdout!, false);
    lines(this.child.stderr!, true);
    createInterface({ input: this.child.stdio[3] as Readable, crlfDelay: Infinity }).on('line', (line) => {
      if (this.state !== 'warming') return;
      this.state = line === 'ready' ? 'ready' : 'failed';
      this.failure = line.replace(/^failed /, '');
      onState(this);
    });
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        if (this.child.pid !== undefined) return;
        this.failure = `could not start ${launch.command}: ${err.message}`;
        resolve({ exitCode: null, signal: null });
      });
      this.child.on('exit', (exitCode, signal) => resolve({ exitCode, signal }));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Turns the standby into its trainer: output (with what it printed while warming) goes to the
   * handlers from now on, and the go carries the trainer's whole environment, argv and cwd.
   */
  start(env: NodeJS.ProcessEnv, onStdout: (line: string) => void, onStderr: (line: string) => void): void {
    this.sink = (line, stderr) => (stderr ? onStderr : onStdout)(line);
    for (const { line, stderr } of this.buffered.splice(0)) this.sink(line, stderr);
    const { target, rest } = this.python;
    const go = {
      set: Object.fromEntries(Object.entries(env).filter(([name, value]) => this.startEnv[name] !== value)),
      argv: [target.kind === 'script' ? target.path : '-m', ...rest],
      cwd: path.resolve(this.launch.cwd ?? process.cwd()),
      // A standby whose preload failed runs exactly the cold command line instead (same pid).
      cold: [this.launch.command, ...this.launch.args],
      env,
    };
    this.child.stdin!.end(JSON.stringify(go) + '\n');
  }

  /** SIGKILL to its whole process group: a waiting standby has run no user code, nothing to save. */
  kill(): void {
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }

  private output(line: string, stderr: boolean): void {
    if (stderr) {
      this.stderrTail.push(line);
      if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
    }
    if (this.sink) return this.sink(line, stderr);
    this.buffered.push({ line, stderr });
    if (this.buffered.length > MAX_BUFFERED_LINES) this.buffered.shift();
  }
}
