// The process table as Linux's /proc shows it: every process with its parent, state, process
// group, session and command name, for the agent (a trainer's process group: stopping it, its
// usage, its Python processes for hang evidence) and the local backend (a node's processes).
//
// Node-only I/O helpers: workflow code never imports this module (it reads /proc, which would
// break a workflow's determinism and does not exist in its sandbox). It lives in common/ only so
// that agent/ and cluster/ share one copy (both may import common/, not each other). Where there
// is no /proc (macOS), listings return null and occupiedProcessGroups falls back to kill(-id, 0).
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import { constants } from 'node:os';

export interface ProcessInfo {
  pid: number;
  /** Parent pid: 1 (or a subreaper) once the parent exited. */
  ppid: number;
  /** R running, S sleeping, D uninterruptible, T stopped, Z zombie (exited, not reaped yet), … */
  state: string;
  processGroupId: number;
  sessionId: number;
  /** The command name, at most 15 characters (the executable's name unless the process renamed itself). */
  comm: string;
}

/** Parses /proc/<pid>/stat: "pid (comm) state ppid pgrp session …"; null when malformed. */
export function parseProcStat(stat: string): ProcessInfo | null {
  // comm may hold spaces and parentheses, so it ends at the last ')', not the first.
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(stat.slice(0, open));
  const [state, ppid, pgrp, session] = stat.slice(close + 2).split(' ');
  const numbers = [pid, Number(ppid), Number(pgrp), Number(session)];
  if (!state || ppid === undefined || pgrp === undefined || session === undefined || !numbers.every(Number.isInteger)) return null;
  return { pid, ppid: numbers[1]!, state, processGroupId: numbers[2]!, sessionId: numbers[3]!, comm: stat.slice(open + 1, close) };
}

/** One process, read synchronously (cheap: one file); null once it is gone or without /proc. */
export function readProcess(pid: number): ProcessInfo | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * Every process visible in /proc, zombies included (callers decide what a zombie means to them);
 * null where there is no /proc. A process that exits while the table is read is simply absent.
 *
 * Synchronous on purpose: each read takes microseconds, a host's table a few milliseconds, and
 * thousands of concurrent async opens (one per process, times every caller scanning at once)
 * can run a process out of file descriptors, and a failed read would look like an exited process.
 */
export function listProcesses(): ProcessInfo[] | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  return entries.flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return [];
    const p = readProcess(Number(entry));
    return p === null ? [] : [p];
  });
}

/** The running (not zombie) processes of one process group, or null where there is no /proc. */
export function processGroupMembers(groupId: number): ProcessInfo[] | null {
  const all = listProcesses();
  return all && all.filter((p) => p.processGroupId === groupId && p.state !== 'Z');
}

/**
 * Of these process groups, the ones with a process that is not a zombie. kill(-id, 0) alone
 * cannot tell: an exited process its parent has not reaped yet (a wrapper's orphan waiting for
 * an init that is slow to reap, or does not reap at all in a container) still counts as a
 * member, and a stop would wait its whole grace period for nothing. Where there is no /proc,
 * falls back to kill(-id, 0).
 */
export function occupiedProcessGroups(groupIds: number[]): number[] {
  if (groupIds.length === 0) return [];
  const all = listProcesses();
  if (all === null) return groupIds.filter(groupExists);
  const occupied = new Set(all.filter((p) => p.state !== 'Z').map((p) => p.processGroupId));
  return groupIds.filter((id) => occupied.has(id));
}

/** How often waitUntilGroupsEmpty looks at the process table. */
const GROUP_POLL_MS = 50;

/**
 * Polls until no process of these groups runs any more and `alsoDone()` holds (a caller's own
 * condition, such as "every leader's exit was seen"); false once `withinMs` passed first.
 */
export async function waitUntilGroupsEmpty(groupIds: number[], withinMs: number, alsoDone: () => boolean = () => true): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (alsoDone() && occupiedProcessGroups(groupIds).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, GROUP_POLL_MS));
  }
}

function groupExists(groupId: number): boolean {
  try {
    process.kill(-groupId, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The path of the process's executable (/proc/<pid>/exe), or null when unreadable or gone. */
export async function executablePath(pid: number): Promise<string | null> {
  try {
    return await readlink(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

/**
 * Whether the process has a handler installed for `signal` (SigCgt in /proc/<pid>/status), so
 * that the signal runs code instead of its default action (which for SIGUSR1 ends the process).
 * Null when it cannot be read (gone, no /proc).
 */
export async function catchesSignal(pid: number, signal: NodeJS.Signals): Promise<boolean | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  const mask = status === null ? undefined : /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  const signo = constants.signals[signal];
  if (mask === undefined || signo === undefined) return null;
  return ((BigInt(`0x${mask}`) >> BigInt(signo - 1)) & 1n) === 1n;
}
