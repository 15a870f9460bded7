// Evidence of a hang, gathered on the node: the Python stacks of each trainer (py-spy when
// installed, else the faulthandler the trainer registered on SIGUSR1, read from its stderr), the
// node's process tree and the last lines each trainer logged.
//
// A trainer is a process group (agent/processGroup.ts) whose leader is often a wrapper:
// `sh -c "python3 train.py"` leads with sh. The stacks come from the group's Python processes,
// never from the leader as such: SIGUSR1's default action ends a process, so it goes only to a
// Python process that installed a handler for it (SigCgt in /proc/<pid>/status). A wrapper, or a
// Python process without faulthandler, is never signalled: evidence must not kill what it observes.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { STANDBY_BOOTSTRAP } from './standbyProcess.ts';
import { catchesSignal, executablePath, processGroupMembers, type ProcessInfo } from '../common/procfs.ts';
import type { ProcessGroup } from './processGroup.ts';

const run = promisify(execFile);
/** Faulthandler output ends when stderr is quiet this long. */
const FAULTHANDLER_QUIET_MS = 500;
const MAX_STACK_CHARS = 64 * 1024;
const LOG_TAIL_LINES = 20;
const NO_STACK =
  'no stack: py-spy is not installed (or may not attach), and no Python process of this trainer handles SIGUSR1 ' +
  '(call faulthandler.register(signal.SIGUSR1, all_threads=True) in the trainer)';

export interface StackEvidence {
  localRank: number;
  rank: number;
  /** The trainer's Python process (the topmost one of its group); the group's leader when there is none. */
  pid: number;
  method: 'py-spy' | 'faulthandler' | 'none';
  stack: string;
  logTail: string;
}

export interface HangEvidence {
  processTree: string;
  stacks: StackEvidence[];
}

/** A Python process of a trainer's group, and whether SIGUSR1 would run a handler in it. */
interface PythonProcess {
  pid: number;
  handlesUsr1: boolean;
}

export async function captureHangEvidence(group: ProcessGroup, pySpy = 'py-spy'): Promise<HangEvidence> {
  const live = group.liveTrainers();
  const pythons = await Promise.all(live.map((t) => pythonProcesses(t.pid)));
  const spied = await Promise.all(pythons.map((ps) => Promise.all(ps.map((p) => pySpyDump(pySpy, p.pid)))));
  // Processes py-spy could not read tell their stacks through faulthandler, all at once.
  const toSignal = pythons.flatMap((ps, i) => ps.filter((p, j) => spied[i]![j] === undefined && p.handlesUsr1));
  const dumped = toSignal.length
    ? await group.captureStderr(() => {
        for (const p of toSignal) {
          try {
            process.kill(p.pid, 'SIGUSR1');
          } catch {
            // exited meanwhile
          }
        }
      }, FAULTHANDLER_QUIET_MS)
    : new Map<number, string[]>();
  const stacks = live.map((t, i): StackEvidence => {
    const viaSpy = spied[i]!.filter((s): s is string => s !== undefined);
    const viaHandler = dumped.get(t.localRank)?.join('\n');
    const method = viaSpy.length ? 'py-spy' : viaHandler ? 'faulthandler' : 'none';
    const stack = withoutStandbyFrames([...viaSpy, ...(viaHandler ? [viaHandler] : [])].join('\n\n')) || NO_STACK;
    const pid = pythons[i]![0]?.pid ?? t.pid;
    return { localRank: t.localRank, rank: t.rank, pid, method, stack: stack.slice(-MAX_STACK_CHARS), logTail: t.stderrTail.slice(-LOG_TAIL_LINES).join('\n') };
  });
  return { processTree: await processTree(process.pid, live.map((t) => t.pid)), stacks };
}

/**
 * A stack without the frames of agent/standby.py, which runs a warm trainer's script (its
 * _run_script, main, <module>): the stacks read as a cold start's do. Both formats name the file
 * by its path: faulthandler `File "…/standby.py", line N in f`, py-spy `f (…/standby.py:N)`.
 */
export function withoutStandbyFrames(stack: string): string {
  return stack
    .split('\n')
    .filter((line) => !line.includes(`"${STANDBY_BOOTSTRAP}"`) && !line.includes(`(${STANDBY_BOOTSTRAP}:`))
    .join('\n');
}

/**
 * The Python processes of the process group `groupId` (comm or executable named python*),
 * topmost first (the trainer before its data-loader workers). Without /proc only the leader is
 * known: it counts when it is Python itself, and whether it handles SIGUSR1 cannot be read, so
 * it is trusted to, as a trainer that registered faulthandler does.
 */
async function pythonProcesses(groupId: number): Promise<PythonProcess[]> {
  const members = processGroupMembers(groupId);
  if (members === null) return (await leaderIsPython(groupId)) ? [{ pid: groupId, handlesUsr1: true }] : [];
  const flags = await Promise.all(members.map(isPython));
  const pythons = members.filter((_, i) => flags[i]);
  const pids = new Set(pythons.map((p) => p.pid));
  // A Python process whose parent is not one of these is a trainer, not a worker it forked.
  const ordered = [...pythons.filter((p) => !pids.has(p.ppid)), ...pythons.filter((p) => pids.has(p.ppid))];
  return Promise.all(ordered.map(async (p) => ({ pid: p.pid, handlesUsr1: (await catchesSignal(p.pid, 'SIGUSR1')) === true })));
}

async function isPython(p: ProcessInfo): Promise<boolean> {
  if (isPythonName(p.comm)) return true;
  // A process may rename itself (setproctitle changes comm); its executable still says python.
  const exe = await executablePath(p.pid);
  return exe !== null && isPythonName(path.basename(exe));
}

function isPythonName(name: string): boolean {
  return name.startsWith('python');
}

/** Without /proc (macOS): what ps says the leader runs. */
async function leaderIsPython(pid: number): Promise<boolean> {
  try {
    const { stdout } = await run('ps', ['-o', 'comm=', '-p', String(pid)]);
    return isPythonName(path.basename(stdout.trim()));
  } catch {
    return false;
  }
}

async function pySpyDump(binary: string, pid: number): Promise<string | undefined> {
  try {
    const { stdout } = await run(binary, ['dump', '--pid', String(pid)], { timeout: 10_000, maxBuffer: 4 << 20 });
    return stdout;
  } catch {
    return undefined; // not installed, or not permitted to attach
  }
}

/**
 * `ps` lines of `root` and its descendants, and of every process in `groupIds` with theirs: a
 * wrapper's background child whose wrapper exited has init as its parent but stays in the group.
 */
export async function processTree(root: number, groupIds: number[] = []): Promise<string> {
  try {
    const { stdout } = await run('ps', ['-e', '-o', 'pid=,ppid=,pgid=,stat=,etime=,args='], { maxBuffer: 8 << 20 });
    const rows = stdout.split('\n').filter(Boolean).map((line) => {
      const [pid, ppid, pgid] = line.trim().split(/\s+/, 3).map(Number);
      return { pid: pid!, ppid: ppid!, pgid: pgid!, line: line.trim() };
    });
    const groups = new Set(groupIds);
    const keep = new Set([root, ...rows.filter((r) => groups.has(r.pgid)).map((r) => r.pid)]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const r of rows) if (keep.has(r.ppid) && !keep.has(r.pid)) (keep.add(r.pid), (grew = true));
    }
    return ['PID PPID PGID STAT ELAPSED COMMAND', ...rows.filter((r) => keep.has(r.pid)).map((r) => r.line)].join('\n');
  } catch (err) {
    return `ps failed: ${(err as Error).message}`;
  }
}
