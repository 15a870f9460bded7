// The stack a chaos soak breaks: its own Temporal dev server (state in a file, so a SIGKILLed
// server comes back with every workflow), a worker, one or two API replicas, the Brain and, on
// MySQL, its own MariaDB server (test/privateMariadb.ts), each a detached process that a restart
// starts again with the same command and environment. Used by test/chaos.e2e.test.ts and
// bench/chaos.bench.ts; needs no vitest.
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
import { mysqlAnswers, preparePrivateMariadb, type PrivateMariadb } from './privateMariadb.ts';
import { waitUntil } from './waits.ts';

/** A stack process a fault can hit: 'api-0', 'api-1' are the replicas; 'store' is the MariaDB server. */
export type ChaosPart = 'store' | 'temporal' | 'worker' | 'brain' | `api-${number}`;

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
  /** 'sqlite' (default): a file in the stack's home; 'mysql': a MariaDB server of the stack's own, in its home. */
  store?: 'sqlite' | 'mysql';
  /** API replicas; agents get every one in ROVER_API_URL. Default 1. */
  replicas?: number;
  /** Extra environment for every Rover process. */
  env?: Record<string, string>;
}

async function answers(url: string): Promise<boolean> {
  return (await fetch(url, { signal: AbortSignal.timeout(2000) }).catch(() => undefined))?.ok ?? false;
}

/**
 * Start order, for restarts of several parts too: servers before their clients (the store first:
 * the API, the Brain and the worker migrate it at boot), and the API before the worker (a worker
 * up while the API is not would take the agents' silence for lost nodes; the API also starts
 * faster, so the agents' outage is shorter).
 */
const ORDER = (part: ChaosPart): number =>
  part === 'store' ? -1 : part === 'temporal' ? 0 : part === 'worker' ? 3 : part === 'brain' ? 2 : 1;

export class ChaosStack {
  readonly parts: ChaosPart[];
  private constructor(
    readonly home: string,
    readonly config: RoverConfig,
    readonly store: Store,
    readonly client: Client,
    private readonly connection: Connection,
    private readonly processes: StackProcess[],
    private readonly mariadb: PrivateMariadb | undefined,
  ) {
    this.parts = processes.map((p) => p.name);
  }

  /** Starts every part and waits until each answers. */
  static async start(o: ChaosStackOptions = {}): Promise<ChaosStack> {
    const home = mkdtempSync(path.join(os.tmpdir(), 'rover-chaos-'));
    const mariadb = o.store === 'mysql' ? await preparePrivateMariadb(path.join(home, 'mariadb')) : undefined;
    const temporalPort = await freePort();
    const apiPorts = await Promise.all(Array.from({ length: o.replicas ?? 1 }, () => freePort()));
    const brainPort = await freePort();
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ROVER_HOME: home,
      ROVER_TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      ROVER_STORE_URL: mariadb?.url ?? `sqlite:${path.join(home, 'rover.db')}`,
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
      ...(mariadb ? [{ name: 'store' as const, command: mariadb.command, args: mariadb.args, env, ready: () => mysqlAnswers(mariadb.url), pid: 0, starts: 0 }] : []),
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
    // The store first: this process's own connection to it migrates it.
    const [storeProcess] = processes.filter((p) => p.name === 'store');
    let store: Store;
    try {
      if (storeProcess) await startProcess(home, storeProcess);
      store = await openStore(config.storeUrl);
    } catch (err) {
      if (storeProcess?.pid) await stopProcessGroup(storeProcess.pid, 5000);
      mariadb?.remove();
      throw err;
    }
    const stack = new ChaosStack(home, config, store, ...(await connectClient(config)), processes, mariadb);
    try {
      await stack.startInOrder(processes.filter((p) => p !== storeProcess));
    } catch (err) {
      await stack.close();
      throw err;
    }
    return stack;
  }

  /**
   * SIGKILLs these parts at once, then starts each again (same command and environment) in start
   * order, `downMs` after they died (an outage of a chosen length; default at once).
   */
  async killAndRestart(parts: ChaosPart[], downMs = 0): Promise<void> {
    const chosen = this.processes.filter((p) => parts.includes(p.name));
    for (const p of chosen) process.kill(-p.pid, 'SIGKILL');
    for (const p of chosen) await waitUntil(() => !isAlive(p.pid), `${p.name} ${p.pid} to die`, 10_000);
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.startInOrder(chosen);
  }

  /** The parts that `rover up` runs: not the store, a server of its own that Rover only connects to. */
  private get roverProcesses(): StackProcess[] {
    return this.processes.filter((p) => p.name !== 'store');
  }

  /**
   * A planned restart: `rover down --keep-jobs` (cli/up.ts stopStack: workers first, each process
   * given its grace; the jobs' nodes train on), then every part started again as `rover up` would.
   */
  async downAndUp(): Promise<void> {
    const processes = this.roverProcesses.map((p) => ({ name: p.name, pid: p.pid, logFile: logPath(this.home, p.name, p.starts) }));
    // stopStack stops what rover up recorded in up.json; this stack records its processes the same way.
    writeFileSync(path.join(this.home, 'up.json'), JSON.stringify({ startedAt: new Date().toISOString(), processes, webUiUrl: '', apiUrl: this.config.api.url }));
    await stopStack(this.config, { keepJobs: true });
    await this.startInOrder(this.roverProcesses);
  }

  private async startInOrder(processes: StackProcess[]): Promise<void> {
    for (const p of [...processes].sort((a, b) => ORDER(a.name) - ORDER(b.name))) await startProcess(this.home, p);
  }

  /** Stops every part (the store last, after its clients), then removes the store's datadir; logs stay in the home. */
  async close(): Promise<void> {
    for (const p of this.roverProcesses) if (p.pid) await stopProcessGroup(p.pid, 5000);
    await this.store.close();
    await this.connection.close();
    for (const p of this.processes) if (p.name === 'store' && p.pid) await stopProcessGroup(p.pid, 5000);
    this.mariadb?.remove();
  }
}

async function startProcess(home: string, p: StackProcess): Promise<void> {
  p.starts += 1;
  const logFile = logPath(home, p.name, p.starts);
  p.pid = spawnDetached(p.command, p.args, { env: p.env, logFile }).pid;
  // waitUntil retries a check that throws, so an exit ends the wait and is reported after it.
  await waitUntil(async () => !isAlive(p.pid) || (existsSync(logFile) && (await p.ready(logFile))), `${p.name} to be ready`, 300_000, 200);
  if (!isAlive(p.pid)) throw new Error(`${p.name} exited; log:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
}

async function connectClient(config: RoverConfig): Promise<[Client, Connection]> {
  // Lazy: the server is not up yet; the connection is made on first use and survives its restarts.
  const connection = Connection.lazy({ address: config.temporal.address });
  return [new Client({ connection, namespace: config.temporal.namespace }), connection];
}

function logPath(home: string, name: string, start: number): string {
  return path.join(home, 'logs', `${name}-${start}.log`);
}
