// Evidence of a hang, gathered on the node: each training process's Python stacks (py-spy when
// installed, else the faulthandler the trainer registered on SIGUSR1, read from its stderr),
// the node's process tree and the last lines each process logged.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ProcessGroup } from './processGroup.ts';

const run = promisify(execFile);
/** Faulthandler output ends when stderr is quiet this long. */
const FAULTHANDLER_QUIET_MS = 500;
const MAX_STACK_CHARS = 64 * 1024;
const LOG_TAIL_LINES = 20;

export interface StackEvidence {
  localRank: number;
  rank: number;
  pid: number;
  method: 'py-spy' | 'faulthandler' | 'none';
  stack: string;
  logTail: string;
}

export interface HangEvidence {
  processTree: string;
  stacks: StackEvidence[];
}

export async function captureHangEvidence(group: ProcessGroup, pySpy = 'py-spy'): Promise<HangEvidence> {
  const live = group.liveTrainers();
  const spied = await Promise.all(live.map((t) => pySpyDump(pySpy, t.pid)));
  const missing = live.filter((_, i) => spied[i] === undefined);
  // Stacks of the processes py-spy could not read come from their faulthandler, all at once.
  const dumped = missing.length
    ? await group.captureStderr(() => {
        for (const t of missing) {
          try {
            process.kill(t.pid, 'SIGUSR1');
          } catch {
            // exited meanwhile
          }
        }
      }, FAULTHANDLER_QUIET_MS)
    : new Map<number, string[]>();
  const stacks = live.map((t, i): StackEvidence => {
    const viaSpy = spied[i];
    const viaHandler = dumped.get(t.localRank)?.join('\n');
    const method = viaSpy !== undefined ? 'py-spy' : viaHandler ? 'faulthandler' : 'none';
    const stack = viaSpy ?? viaHandler ?? 'no stack: py-spy is not installed and the process printed nothing on SIGUSR1 (register faulthandler for SIGUSR1)';
    return { localRank: t.localRank, rank: t.rank, pid: t.pid, method, stack: stack.slice(-MAX_STACK_CHARS), logTail: t.stderrTail.slice(-LOG_TAIL_LINES).join('\n') };
  });
  return { processTree: await processTree(process.pid), stacks };
}

async function pySpyDump(binary: string, pid: number): Promise<string | undefined> {
  try {
    const { stdout } = await run(binary, ['dump', '--pid', String(pid)], { timeout: 10_000, maxBuffer: 4 << 20 });
    return stdout;
  } catch {
    return undefined; // not installed, or not permitted to attach
  }
}

/** `ps` lines of `root` and its descendants. */
export async function processTree(root: number): Promise<string> {
  try {
    const { stdout } = await run('ps', ['-e', '-o', 'pid=,ppid=,stat=,etime=,args='], { maxBuffer: 8 << 20 });
    const rows = stdout.split('\n').filter(Boolean).map((line) => {
      const [pid, ppid] = line.trim().split(/\s+/, 2).map(Number);
      return { pid: pid!, ppid: ppid!, line: line.trim() };
    });
    const keep = new Set([root]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const r of rows) if (keep.has(r.ppid) && !keep.has(r.pid)) (keep.add(r.pid), (grew = true));
    }
    return ['PID PPID STAT ELAPSED COMMAND', ...rows.filter((r) => keep.has(r.pid)).map((r) => r.line)].join('\n');
  } catch (err) {
    return `ps failed: ${(err as Error).message}`;
  }
}
