// A local Ray head for development and tests: Ray from the cached virtualenv that
// deploy/local/ray.sh installs, every port free and on 127.0.0.1, usage stats off. The head
// runs in its own session (`ray start --block`, detached), so stop() ends exactly the processes
// it started — never another user's Ray, unlike `ray stop`.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../common/repoRoot.ts';
import { freePort } from './devServer.ts';

export const RAY_VERSION = '2.60.0';
const installScript = path.join(repoRoot, 'deploy/local/ray.sh');

/** The cached virtualenv's `ray` command, when a finished install is there. */
export function cachedRayCommand(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const cache = env.XDG_CACHE_HOME || path.join(homedir(), '.cache');
  const venv = env.ROVER_RAY_VENV || path.join(cache, 'rover', `ray-${RAY_VERSION}`);
  return existsSync(path.join(venv, '.installed')) ? path.join(venv, 'bin', 'ray') : undefined;
}

/** Installs Ray into the cache if needed (minutes the first time) and returns its `ray` command. */
export async function installRay(): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', [installScript], { maxBuffer: 16 << 20, timeout: 20 * 60_000 });
  const ray = stdout.trim().split('\n').pop();
  if (!ray || !existsSync(ray)) throw new Error(`deploy/local/ray.sh printed no ray command (got "${stdout.trim()}")`);
  return ray;
}

export interface RayHeadOptions {
  ray: string;
  /** Logical CPUs the head advertises; Ray jobs may ask for fractions. */
  numCpus: number;
  /** Start with RAY_AUTH_MODE=token and this token; otherwise auth is disabled. */
  authToken?: string;
}

export interface RayHead {
  /** Dashboard (Jobs API) URL. */
  address: string;
  /** Pid of `ray start --block`, also the id of the session every head process runs in. */
  pid: number;
  logFile: string;
  /** Pid of the dashboard process (tests pause it to make the head unreachable). */
  dashboardPid(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** Ports Ray's workers may take: WORKER_PORTS of them from the returned base. */
const WORKER_PORTS = 200;

/**
 * A random base for the workers' port range that holds none of the head's own ports (`taken`):
 * Ray refuses to start when a component's port falls inside the workers' range (seen in CI:
 * dashboard_agent_grpc 36505 inside 36336–36536).
 */
export function workerPortRange(taken: number[]): number {
  for (;;) {
    const base = 30000 + Math.floor(Math.random() * 20000);
    if (taken.every((port) => port < base || port > base + WORKER_PORTS)) return base;
  }
}

export async function startRayHead(options: RayHeadOptions): Promise<RayHead> {
  // Ray puts unix sockets under its temp dir: keep the path short.
  const tempDir = mkdtempSync('/tmp/rover-ray-');
  const logFile = path.join(tempDir, 'head.log');
  const ports = await Promise.all(Array.from({ length: 9 }, () => freePort()));
  const [gcs, dashboard, client, nodeManager, objectManager, agentListen, agentGrpc, runtimeEnvAgent, metrics] = ports;
  const workerPortBase = workerPortRange(ports);
  const args = [
    'start', '--head', '--block',
    `--num-cpus=${options.numCpus}`,
    `--port=${gcs}`,
    '--dashboard-host=127.0.0.1',
    `--dashboard-port=${dashboard}`,
    `--ray-client-server-port=${client}`,
    `--node-manager-port=${nodeManager}`,
    `--object-manager-port=${objectManager}`,
    `--dashboard-agent-listen-port=${agentListen}`,
    `--dashboard-agent-grpc-port=${agentGrpc}`,
    `--runtime-env-agent-port=${runtimeEnvAgent}`,
    `--metrics-export-port=${metrics}`,
    `--min-worker-port=${workerPortBase}`,
    `--max-worker-port=${workerPortBase + WORKER_PORTS}`,
    `--temp-dir=${tempDir}`,
    '--disable-usage-stats',
  ];
  const env = {
    ...process.env,
    RAY_AUTH_MODE: options.authToken ? 'token' : 'disabled',
    ...(options.authToken ? { RAY_AUTH_TOKEN: options.authToken } : {}),
    // Ray swaps 127.0.0.1 for the machine's address; this keeps a one-machine head on loopback.
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER: '0',
    RAY_USAGE_STATS_ENABLED: '0',
  };
  const log = openSync(logFile, 'a');
  const child = spawn(options.ray, args, { env, detached: true, stdio: ['ignore', log, log], cwd: tempDir });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${options.ray}`);
  child.unref();
  const pid = child.pid;
  const address = `http://127.0.0.1:${dashboard}`;

  const head: RayHead = {
    address,
    pid,
    logFile,
    async dashboardPid() {
      const procs = await sessionProcesses(pid);
      return procs.find((p) => p.command.includes('dashboard/dashboard.py'))?.pid;
    },
    async stop() {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && (await sessionProcesses(pid)).some((p) => !p.zombie)) await sleep(200);
      for (const p of await sessionProcesses(pid)) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      rmSync(tempDir, { recursive: true, force: true });
    },
  };

  // Ready when the Jobs API answers (the job agent registers a little after the dashboard).
  const readyBy = Date.now() + 180_000;
  const headers: Record<string, string> = options.authToken ? { authorization: `Bearer ${options.authToken}` } : {};
  for (;;) {
    if (child.exitCode !== null || !(await sessionProcesses(pid)).some((p) => p.pid === pid && !p.zombie)) {
      // The log lives in the temp dir that stop() removes: read it first.
      const tail = readTail(logFile);
      await head.stop();
      throw new Error(`ray head exited during start-up; log:\n${tail}`);
    }
    const ok = await fetch(`${address}/api/jobs/`, { headers }).then((r) => r.ok, () => false);
    if (ok) return head;
    if (Date.now() > readyBy) {
      const tail = readTail(logFile);
      await head.stop();
      throw new Error(`ray head did not answer on ${address} within 180 s; log:\n${tail}`);
    }
    await sleep(500);
  }
}

interface SessionProcess {
  pid: number;
  zombie: boolean;
  command: string;
}

/** Processes whose session id is `sid`. */
async function sessionProcesses(sid: number): Promise<SessionProcess[]> {
  const { stdout } = await promisify(execFile)('ps', ['-eo', 'pid=,sid=,stat=,args='], { maxBuffer: 16 << 20 });
  const found: SessionProcess[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (m && Number(m[2]) === sid) found.push({ pid: Number(m[1]), zombie: m[3]!.startsWith('Z'), command: m[4]! });
  }
  return found;
}

function readTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-3000);
  } catch {
    return '(no log)';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
