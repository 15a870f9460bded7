// The stack a chaos soak breaks: its own Temporal dev server (state in a file, so a SIGKILLed
// server comes back with every workflow), a worker, one or two API replicas and the Brain, each a
// detached process that a restart starts again with the same command and environment. Used by
// test/chaos.e2e.test.ts and bench/chaos.bench.ts; needs no vitest.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { isAlive, roverEntrypoint, spawnDetached, stopProcessGroup } from '../cluster/local/processes.ts';
import { stopStack } from '../cli/up.ts';
import { loadConfig, type RoverConfig } from '../common/config.ts';
import { devServerArgs, freePort, waitForTemporal } from '../deploy/local/devServer.ts';
import { resolveTemporalCli } from '../deploy/local/temporalCli.ts';
import { openStore, type Store } from '../store/index.ts';
import { waitUntil } from './waits.ts';

/** A stack process a fault can hit: 'api-0', 'api-1' are the replicas. */
export type ChaosPart = 'temporal' | 'worker' | 'brain' | `api-${number}`;

interface StackProcess {
  name: ChaosPart;
  command: string;
  args: string[];
  env: Record<string, string>;
  ready: (logFile: string) => Promise<boolean>;
  pid: number;
  starts: number;
}

export interface ChaosStackOptions {
  /** Store URL; default a SQLite file in the stack's home. */
  storeUrl?: string;
  /** API replicas; agents get every one in ROVER_API_URL. Default 1. */
  replicas?: number;
  /** Extra environment for every Rover process. */
  env?: Record<string, string>;
}

async function answers(url: string): Promise<boolean> {
  return (await fetch(url, { signal: AbortSignal.timeout(2000) }).catch(() => undefined))?.ok ?? false;
}

/**
 * Start order, for restarts of several parts too: the server before its clients, and the API
 * before the worker (a worker up while the API is not would take the agents' silence for lost
 * nodes; the API also starts faster, so the agents' outage is shorter).
 */
const ORDER = (part: ChaosPart): number => (part === 'temporal' ? 0 : part === 'worker' ? 3 : part === 'brain' ? 2 : 1);

export class ChaosStack {
  readonly parts: ChaosPart[];
  private constructor(
    readonly home: string,
    readonly config: RoverConfig,
    readonly store: Store,
    readonly client: Client,
    private readonly connection: Connection,
    private readonly processes: StackProcess[],
  ) {
    this.parts = processes.map((p) => p.name);
  }

  /** Starts every part and waits until each answers. */
  static async start(o: ChaosStackOptions = {}): Promise<ChaosStack> {
    const home = mkdtempSync(path.join(os.tmpdir(), 'rover-chaos-'));
    const temporalPort = await freePort();
    const apiPorts = await Promise.all(Array.from({ length: o.replicas ?? 1 }, () => freePort()));
    const brainPort = await freePort();
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ROVER_HOME: home,
      ROVER_TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      ROVER_STORE_URL: o.storeUrl ?? `sqlite:${path.join(home, 'rover.db')}`,
      ROVER_API_URL: apiPorts.map((p) => `http://127.0.0.1:${p}`).join(','),
      ROVER_BRAIN_PORT: String(brainPort),
      ROVER_BRAIN_URL: `http://127.0.0.1:${brainPort}`,
      ROVER_WATCH_POLL_MS: '100',
      ROVER_WATCH_MAX_WAIT_MS: '3000',
      ROVER_SHUTDOWN_GRACE_MS: '2000',
      ROVER_LOG_LEVEL: 'info',
      ROVER_WORKER_METRICS_ADDRESS: 'off',
      ...o.env,
    };
    const config = loadConfig(env);
    const temporal = await resolveTemporalCli(() => {});
    const rover = (name: ChaosPart, entry: string, ready: (logFile: string) => Promise<boolean>, extra: Record<string, string> = {}): StackProcess => {
      const cmd = roverEntrypoint(entry);
      return { name, ...cmd, env: { ...env, ...extra }, ready, pid: 0, starts: 0 };
    };
    const processes: StackProcess[] = [
      {
        name: 'temporal',
        command: temporal,
        args: devServerArgs({ port: temporalPort, uiPort: 0, headless: true, dbFile: path.join(home, 'temporal.db') }),
        env,
        ready: () => waitForTemporal(config.temporal.address, 1500).then(() => true, () => false),
        pid: 0,
        starts: 0,
      },
      rover('worker', 'workers/main.ts', async (logFile) => readFileSync(logFile, 'utf8').includes('rover worker running')),
      rover('brain', 'api/brainMain.ts', () => answers(`http://127.0.0.1:${brainPort}/healthz`)),
      ...apiPorts.map((port, i) => rover(`api-${i}`, 'api/main.ts', () => answers(`http://127.0.0.1:${port}/healthz`), { ROVER_API_PORT: String(port) })),
    ];
    const stack = new ChaosStack(home, config, await openStore(config.storeUrl), ...(await connectClient(config)), processes);
    try {
      await stack.startInOrder(processes);
    } catch (err) {
      await stack.close();
      throw err;
    }
    return stack;
  }

  private async startProcess(p: StackProcess): Promise<void> {
    p.starts += 1;
    const logFile = logPath(this.home, p.name, p.starts);
    p.pid = spawnDetached(p.command, p.args, { env: p.env, logFile }).pid;
    await waitUntil(async () => {
      if (!isAlive(p.pid)) throw new Error(`${p.name} exited; log:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
      return existsSync(logFile) && p.ready(logFile);
    }, `${p.name} to be ready`, 300_000, 200);
  }

  /** SIGKILLs these parts at once, then starts each again (same command and environment) in start order. */
  async killAndRestart(parts: ChaosPart[]): Promise<void> {
    const chosen = this.processes.filter((p) => parts.includes(p.name));
    for (const p of chosen) process.kill(-p.pid, 'SIGKILL');
    for (const p of chosen) await waitUntil(() => !isAlive(p.pid), `${p.name} ${p.pid} to die`, 10_000);
    await this.startInOrder(chosen);
  }

  /**
   * A planned restart: `rover down --keep-jobs` (cli/up.ts stopStack: workers first, each process
   * given its grace; the jobs' nodes train on), then every part started again as `rover up` would.
   */
  async downAndUp(): Promise<void> {
    const processes = this.processes.map((p) => ({ name: p.name, pid: p.pid, logFile: logPath(this.home, p.name, p.starts) }));
    // stopStack stops what rover up recorded in up.json; this stack records its processes the same way.
    writeFileSync(path.join(this.home, 'up.json'), JSON.stringify({ startedAt: new Date().toISOString(), processes, webUiUrl: '', apiUrl: this.config.api.url }));
    await stopStack(this.config, { keepJobs: true });
    await this.startInOrder(this.processes);
  }

  private async startInOrder(processes: StackProcess[]): Promise<void> {
    for (const p of [...processes].sort((a, b) => ORDER(a.name) - ORDER(b.name))) await this.startProcess(p);
  }

  async close(): Promise<void> {
    for (const p of this.processes) if (p.pid) await stopProcessGroup(p.pid, 5000);
    await this.store.close();
    await this.connection.close();
  }
}

async function connectClient(config: RoverConfig): Promise<[Client, Connection]> {
  // Lazy: the server is not up yet; the connection is made on first use and survives its restarts.
  const connection = Connection.lazy({ address: config.temporal.address });
  return [new Client({ connection, namespace: config.temporal.namespace }), connection];
}

function logPath(home: string, name: string, start: number): string {
  return path.join(home, 'logs', `${name}-${start}.log`);
}
