// Process-group helpers: Rover starts long-lived processes detached in their own group so a
// crash of the starter does not take them down, and stops them by group so nothing is left.
// A local node's processes are also found by their environment (findNodeProcesses): its
// trainers lead sessions of their own and outlive an agent that was SIGKILLed.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { repoRoot } from '../../common/repoRoot.ts';
import { listProcesses, occupiedProcessGroups, readProcess, waitUntilGroupsEmpty, type ProcessInfo } from '../../common/procfs.ts';

export interface DetachedProcess {
  pid: number;
  logFile: string;
}

export function spawnDetached(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; logFile: string },
): DetachedProcess {
  mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = openSync(options.logFile, 'a');
  try {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ['ignore', log, log],
    });
    if (child.pid === undefined) throw new Error(`could not start ${command}: no pid`);
    child.unref();
    return { pid: child.pid, logFile: options.logFile };
  } finally {
    closeSync(log);
  }
}

/** True while a process with this pid exists (zombies of our own children count as gone). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return readProcess(pid)?.state !== 'Z';
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

const POLL_MS = 50;
/** After SIGKILL, how long the kernel gets to take the processes away before a stop gives up waiting. */
const AFTER_KILL_WAIT_MS = 5000;

/**
 * SIGTERM the process group led by pid, SIGKILL it after the grace period; resolves when gone.
 * Emptiness ignores zombies (occupiedProcessGroups), which kill(-pid, 0) would count.
 */
export async function stopProcessGroup(pid: number, graceMs: number): Promise<void> {
  if (occupiedProcessGroups([pid]).length === 0) return;
  signalGroup(pid, 'SIGTERM');
  if (await waitUntilGroupsEmpty([pid], graceMs)) return;
  signalGroup(pid, 'SIGKILL');
  await waitUntilGroupsEmpty([pid], AFTER_KILL_WAIT_MS);
}

/** Which node a process belongs to, read from the ROVER_* variables of its environment. */
export interface LocalNodeIdentity {
  jobId: string;
  nodeId: number;
  incarnation: number;
  /** The launching backend's home: its localStackId tells apart stacks that share a host. */
  home: string;
}

/** Variable the local backend puts in each agent's environment; trainers inherit it. */
export const LOCAL_STACK_VAR = 'ROVER_LOCAL_STACK';

/**
 * The stack's mark in its nodes' environments: 16 hex digits of sha256(the home's absolute path).
 * It tells two stacks on one host apart without telling a trainer where the stack keeps its
 * database and operator token.
 */
export function localStackId(home: string): string {
  return createHash('sha256').update(path.resolve(home)).digest('hex').slice(0, 16);
}

/**
 * The running processes of this user that belong to the node: the agent, every training process
 * and whatever they started, orphans included. Each carries ROVER_JOB, ROVER_NODE and
 * ROVER_INCARNATION (agentEnv, trainerEnv) and the launching stack's ROVER_LOCAL_STACK
 * (the agent's environment, which the trainers inherit): the home tells apart two stacks on one
 * host that run a job of the same name, so one never kills the other's. /proc/<pid>/environ is
 * the environment a process was started with; changing its own later does not hide it. Null
 * where there is no /proc to read.
 */
export function findNodeProcesses(node: LocalNodeIdentity): ProcessInfo[] | null {
  const wanted = [
    `ROVER_JOB=${node.jobId}`,
    `ROVER_NODE=${node.nodeId}`,
    `ROVER_INCARNATION=${node.incarnation}`,
    `${LOCAL_STACK_VAR}=${localStackId(node.home)}`,
  ];
  const processes = listProcesses();
  if (processes === null) return null;
  const uid = process.getuid?.();
  // Synchronous reads, as listProcesses: several nodes are stopped at once, and an environ read
  // that failed for want of file descriptors would hide a process that still runs.
  return processes.filter((p) => {
    if (p.pid === process.pid || p.state === 'Z') return false;
    try {
      if (uid !== undefined && statSync(`/proc/${p.pid}`).uid !== uid) return false;
      const vars = readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0');
      return wanted.every((v) => vars.includes(v));
    } catch {
      return false; // gone, or not ours to read
    }
  });
}

/**
 * Sends `signal` once to each of these processes, by process group where the process's group
 * is the one its session was made with (Rover starts the agent and each trainer with setsid, so
 * those groups hold only the node's processes); a process in someone else's group gets the
 * signal alone. `sent` keeps the targets already signalled, so a rescan never signals twice.
 */
function signalNodeProcesses(processes: ProcessInfo[], signal: NodeJS.Signals, sent: Set<string>): void {
  for (const p of processes) {
    const ownSession = p.processGroupId === p.sessionId;
    const target = ownSession ? -p.processGroupId : p.pid;
    if (sent.has(String(target))) continue;
    sent.add(String(target));
    try {
      process.kill(target, signal);
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * Margin the local backend gives a SIGTERMed agent beyond its own SIGTERM → SIGKILL grace for
 * its trainers, so its orderly stop (trainers, flash checkpoint, exit) ends before the backend's
 * SIGKILL. Same margin as Ray's stop wait (cluster/ray/submission.ts).
 */
export const AGENT_STOP_MARGIN_MS = 5000;

/**
 * Stops everything a local node runs, whatever state it is in. `agentGraceMs` is the agent's own
 * grace for its trainers (ROVER_SHUTDOWN_GRACE_MS); the agent gets that plus AGENT_STOP_MARGIN_MS.
 * - Agent alive: SIGTERM to the agent alone; it forwards one SIGTERM to each trainer's process
 *   group, SIGKILLs them after its grace and exits.
 * - Agent already gone (SIGKILLed, crashed, node lost): nobody forwards anything, so each of the
 *   node's process groups gets its one SIGTERM here, and the grace.
 * Then SIGKILL to whatever of the node is left — the agent, trainers it orphaned, processes that
 * left their group — found by their environment, and wait until they are gone.
 */
export async function stopLocalNode(node: LocalNodeIdentity, agentPid: number | null, agentGraceMs: number): Promise<void> {
  const processes = findNodeProcesses(node);
  if (processes === null) {
    // No /proc (not Linux): the agent's group is all there is to go by; the agent stops its trainers.
    if (agentPid !== null) await stopProcessGroup(agentPid, agentGraceMs + AGENT_STOP_MARGIN_MS);
    return;
  }
  if (processes.length === 0) return;
  // The store's pid counts only while it is still the node's agent, not a reused pid.
  const agent = agentPid === null ? undefined : processes.find((p) => p.pid === agentPid);
  if (agent) {
    try {
      process.kill(agent.pid, 'SIGTERM');
    } catch {
      // exited meanwhile
    }
    await waitUntilGone([agent.pid], agentGraceMs + AGENT_STOP_MARGIN_MS);
  } else {
    signalNodeProcesses(processes, 'SIGTERM', new Set());
    await waitUntilGone(processes.map((p) => p.pid), agentGraceMs);
  }
  // What is left now gets SIGKILL; rescans catch what forked meanwhile.
  const killed = new Set<string>();
  const deadline = Date.now() + AFTER_KILL_WAIT_MS;
  for (;;) {
    const left = findNodeProcesses(node) ?? [];
    if (left.length === 0 || Date.now() >= deadline) return;
    signalNodeProcesses(left, 'SIGKILL', killed);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Waits (cheaply, by pid) until none of these processes runs, or the time is up. */
async function waitUntilGone(pids: number[], withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, POLL_MS));
}

const tsxLoader = fileURLToPath(import.meta.resolve('tsx'));
// bin/build.js by its place in the repository: from dist/ a relative import would miss it.
const { buildIsFresh, distDir } = (await import(pathToFileURL(path.join(repoRoot, 'bin', 'build.js')).href)) as typeof import('../../bin/build.js');

/**
 * Command and arguments that run one of Rover's TypeScript entry points (path from repo root):
 * its compiled JavaScript in dist/ while that build is current (bin/build.js buildIsFresh; `npm ci`
 * builds it), so an agent, worker or API starts without transpiling TypeScript, else the source
 * through tsx. Same rule as bin/rover.js for the CLI.
 */
export function roverEntrypoint(relativePath: string, args: string[] = []): { command: string; args: string[] } {
  const compiled = path.join(distDir, relativePath.replace(/\.ts$/, '.js'));
  if (buildIsFresh() && existsSync(compiled)) return { command: process.execPath, args: [compiled, ...args] };
  return { command: process.execPath, args: ['--import', tsxLoader, path.join(repoRoot, relativePath), ...args] };
}
