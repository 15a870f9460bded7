// Process-group helpers: Rover starts long-lived processes detached in their own group so a
// crash of the starter does not take them down, and stops them by group so nothing is left.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; state Z is a zombie.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
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

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return isAlive(pid);
  }
}

/** SIGTERM the process group led by pid, SIGKILL it after the grace period; resolves when gone. */
export async function stopProcessGroup(pid: number, graceMs: number): Promise<void> {
  if (!groupAlive(pid)) return;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!groupAlive(pid)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  signalGroup(pid, 'SIGKILL');
  const killDeadline = Date.now() + 5000;
  while (groupAlive(pid) && Date.now() < killDeadline) await new Promise((r) => setTimeout(r, 50));
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const tsxLoader = fileURLToPath(import.meta.resolve('tsx'));

/** Command and arguments that run one of Rover's TypeScript entry points (path from repo root). */
export function roverEntrypoint(relativePath: string, args: string[] = []): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--import', tsxLoader, path.join(repoRoot, relativePath), ...args] };
}
