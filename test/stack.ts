// A Rover stack for end-to-end tests: the real worker and API as processes (so a test can
// SIGKILL them), against the suite's Temporal dev server, with a private home and store: a SQLite
// file in the home, or a MySQL database of its own made through ROVER_TEST_MYSQL_URL and dropped
// when the stack closes.
import { readFileSync, existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { connectTemporal } from '../cli/jobs.ts';
import { LocalBackend } from '../cluster/local/localBackend.ts';
import { isAlive, roverEntrypoint, spawnDetached, stopProcessGroup } from '../cluster/local/processes.ts';
import { NODE_STATUSES } from '../common/phases.ts';
import { loadConfig, type RoverConfig } from '../common/config.ts';
import { freePort } from '../deploy/local/devServer.ts';
import { openStore, type Store, type StoreDialect } from '../store/index.ts';
import { createMysqlDatabase, MYSQL_URL_ENV } from '../store/testing.ts';
import { runningSyncWorkflowsQuery } from '../workers/brainWorker.ts';
import { temporalAddress, temporalClient, taskQueueFor, waitUntil } from './helpers.ts';

export interface TestStack {
  home: string;
  env: Record<string, string>;
  config: RoverConfig;
  client: Client;
  /** The stack's store, opened by the test for assertions. */
  store: Store;
  worker: { pid: number };
  api: { pid: number };
  /** The standalone Brain (api/brainMain.ts); jobs reach it when the stack's ROVER_BRAIN_URL names its port. */
  brain: { pid: number };
  /**
   * The Brain worker (workers/brainMain.ts): one brainConfigSync workflow per source of the
   * stack's ROVER_BRAIN_SOURCES, on a task queue of the stack's own (ROVER_BRAIN_TASK_QUEUE).
   */
  brainWorker: { pid: number };
  startWorker(): Promise<void>;
  startApi(): Promise<void>;
  startBrain(): Promise<void>;
  startBrainWorker(): Promise<void>;
  kill(which: StackProcess): Promise<void>;
  close(): Promise<void>;
}

type StackProcess = 'worker' | 'api' | 'brain' | 'brainWorker';

export interface TestStackOptions {
  /** Where the stack keeps its state; default sqlite. mysql needs ROVER_TEST_MYSQL_URL. */
  store?: StoreDialect;
}

/** The stack's store URL, and what removes it after the stack: a MySQL database is dropped. */
async function stackStore(dialect: StoreDialect, home: string): Promise<{ url: string; drop?: () => Promise<void> }> {
  if (dialect === 'sqlite') return { url: `sqlite:${path.join(home, 'rover.db')}` };
  const base = process.env[MYSQL_URL_ENV];
  if (!base) throw new Error(`a stack on MySQL needs ${MYSQL_URL_ENV} (e.g. mysql://rover:rover@127.0.0.1:3306/rover)`);
  return createMysqlDatabase(base);
}

function logHas(file: string, text: string): boolean {
  return existsSync(file) && readFileSync(file, 'utf8').includes(text);
}

export async function startTestStack(title: string, extraEnv: Record<string, string> = {}, opts: TestStackOptions = {}): Promise<TestStack> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'rover-e2e-'));
  const apiPort = await freePort();
  const database = await stackStore(opts.store ?? 'sqlite', home);
  const env: Record<string, string> = {
    ROVER_HOME: home,
    ROVER_TEMPORAL_ADDRESS: temporalAddress(),
    ROVER_TASK_QUEUE: taskQueueFor(title),
    ROVER_BRAIN_TASK_QUEUE: taskQueueFor(`${title} brain`),
    ROVER_STORE_URL: database.url,
    ROVER_API_PORT: String(apiPort),
    ROVER_WATCH_POLL_MS: '100',
    ROVER_WATCH_MAX_WAIT_MS: '3000',
    ROVER_SHUTDOWN_GRACE_MS: '2000',
    ROVER_LOG_LEVEL: 'info',
    // Stacks run side by side: a test that reads worker metrics passes a free port.
    ROVER_WORKER_METRICS_ADDRESS: 'off',
    ...extraEnv,
  };
  const config = loadConfig({ ...process.env, ...env });
  const store = await openStore(config.storeUrl).catch(async (err: unknown) => {
    await database.drop?.();
    throw err;
  });
  // A stack given its own Temporal (a secured one, test/securedTemporal.ts) gets a client made
  // from the same ROVER_TEMPORAL_* settings as its worker, the way the CLI makes one.
  const { client, close: closeClient } = extraEnv.ROVER_TEMPORAL_ADDRESS ? await connectTemporal(config) : await temporalClient();
  let starts = 0;

  const start = async (name: StackProcess, entry: string, ready: (logFile: string) => Promise<boolean> | boolean) => {
    starts += 1;
    const logFile = path.join(home, 'logs', `${name}-${starts}.log`);
    const cmd = roverEntrypoint(entry);
    const proc = spawnDetached(cmd.command, cmd.args, { env: { ...process.env, ...env }, logFile });
    stack[name] = { pid: proc.pid };
    await waitUntil(async () => {
      if (!isAlive(proc.pid)) throw new Error(`${name} exited; log:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
      return ready(logFile);
    }, `${name} to be ready`, 90_000, 200);
  };

  const stack: TestStack = {
    home,
    env,
    config,
    client,
    store,
    worker: { pid: 0 },
    api: { pid: 0 },
    brain: { pid: 0 },
    brainWorker: { pid: 0 },
    async startWorker() {
      await start('worker', 'workers/main.ts', (logFile) => logHas(logFile, 'rover worker running'));
    },
    async startApi() {
      await start('api', 'api/main.ts', async () => {
        const res = await fetch(`${config.api.url}/healthz`).catch(() => undefined);
        return res?.ok ?? false;
      });
    },
    async startBrain() {
      await start('brain', 'api/brainMain.ts', async () => {
        const res = await fetch(`http://${config.brain.host}:${config.brain.port}/healthz`).catch(() => undefined);
        return res?.ok ?? false;
      });
    },
    async startBrainWorker() {
      await start('brainWorker', 'workers/brainMain.ts', (logFile) => logHas(logFile, 'rover brain worker running'));
    },
    async kill(which) {
      const pid = stack[which].pid;
      process.kill(-pid, 'SIGKILL');
      await waitUntil(() => !isAlive(pid), `${which} ${pid} to die`, 10_000);
    },
    async close() {
      for (const p of [stack.worker.pid, stack.api.pid, stack.brain.pid, stack.brainWorker.pid]) if (p) await stopProcessGroup(p, 5000);
      // The sync workflows outlive their worker on the suite's server: end the stack's own.
      if (stack.brainWorker.pid) {
        for await (const w of client.workflow.list({ query: runningSyncWorkflowsQuery(config.brain.taskQueue) })) {
          await client.workflow.getHandle(w.workflowId).terminate('test stack closed').catch(() => undefined);
        }
      }
      // Whatever local nodes a failed test left behind, stopped as the backend deletes a node:
      // the agent first, then every process of the node, trainers it orphaned included.
      const backend = new LocalBackend(store, home);
      const nodes = await store.nodes.listByBackend('local', [...NODE_STATUSES]);
      await Promise.all(nodes.map((n) => backend.deleteNode(n, config.timing.shutdownGraceMs)));
      await store.close();
      await closeClient();
      await database.drop?.();
    },
  };
  return stack;
}
