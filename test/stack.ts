// A Rover stack for end-to-end tests: the real worker and API as processes (so a test can
// SIGKILL them), against the suite's Temporal dev server, with a private home and store.
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
import { openStore, type Store } from '../store/index.ts';
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
  startWorker(): Promise<void>;
  startApi(): Promise<void>;
  startBrain(): Promise<void>;
  kill(which: 'worker' | 'api' | 'brain'): Promise<void>;
  close(): Promise<void>;
}

function logHas(file: string, text: string): boolean {
  return existsSync(file) && readFileSync(file, 'utf8').includes(text);
}

export async function startTestStack(title: string, extraEnv: Record<string, string> = {}): Promise<TestStack> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'rover-e2e-'));
  const apiPort = await freePort();
  const env: Record<string, string> = {
    ROVER_HOME: home,
    ROVER_TEMPORAL_ADDRESS: temporalAddress(),
    ROVER_TASK_QUEUE: taskQueueFor(title),
    ROVER_STORE_URL: `sqlite:${path.join(home, 'rover.db')}`,
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
  const store = await openStore(config.storeUrl);
  // A stack given its own Temporal (a secured one, test/securedTemporal.ts) gets a client made
  // from the same ROVER_TEMPORAL_* settings as its worker, the way the CLI makes one.
  const { client, close: closeClient } = extraEnv.ROVER_TEMPORAL_ADDRESS ? await connectTemporal(config) : await temporalClient();
  let starts = 0;

  const start = async (name: 'worker' | 'api' | 'brain', entry: string, ready: (logFile: string) => Promise<boolean> | boolean) => {
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
    async kill(which) {
      const pid = stack[which].pid;
      process.kill(-pid, 'SIGKILL');
      await waitUntil(() => !isAlive(pid), `${which} ${pid} to die`, 10_000);
    },
    async close() {
      for (const p of [stack.worker.pid, stack.api.pid, stack.brain.pid]) if (p) await stopProcessGroup(p, 5000);
      // Whatever local nodes a failed test left behind, stopped as the backend deletes a node:
      // the agent first, then every process of the node, trainers it orphaned included.
      const backend = new LocalBackend(store, home);
      const nodes = await store.nodes.listByBackend('local', [...NODE_STATUSES]);
      await Promise.all(nodes.map((n) => backend.deleteNode(n, config.timing.shutdownGraceMs)));
      await store.close();
      await closeClient();
    },
  };
  return stack;
}
