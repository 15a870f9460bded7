// `rover up`: the whole embedded stack — Temporal dev server, Rover worker, Rover API.
// `rover down` stops a stack started with `rover up --detach`.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig, type RoverConfig } from '../common/config.ts';
import { LocalBackend } from '../cluster/local/localBackend.ts';
import { isAlive, roverEntrypoint, spawnDetached, stopProcessGroup } from '../cluster/local/processes.ts';
import { devServerArgs, waitForTemporal } from '../deploy/local/devServer.ts';
import { resolveTemporalCli } from '../deploy/local/temporalCli.ts';
import { openStore, recordNodeDown } from '../store/index.ts';
import { parseSourceList } from '../brain/sources/registry.ts';
import { waitForBrainSync } from './brain.ts';
import { connectTemporal, jobWorkflowId } from './jobs.ts';
import { sayWhileWaiting, whenOutputCloses } from './output.ts';
import { followJob } from './watch.ts';

interface StackProcess {
  name: string;
  pid: number;
  logFile: string;
}

interface StackFile {
  startedAt: string;
  processes: StackProcess[];
  webUiUrl: string;
  apiUrl: string;
}

function stackFile(config: RoverConfig): string {
  return path.join(config.home, 'up.json');
}

function sayAs(command: 'up' | 'down'): (message: string) => void {
  return (message) => void process.stdout.write(`rover ${command}: ${message}\n`);
}

const say = sayAs('up');

async function waitForHttp(url: string, timeoutMs: number, processAlive: () => boolean, interrupt?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    interrupt?.throwIfAborted();
    if (!processAlive()) throw new Error(`process serving ${url} exited`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** The Brain worker starts one sync workflow per configured source; `rover brain status` lists them once each has read its source. */
async function waitForSourcesRead(config: RoverConfig, workerExited: () => string | undefined, interrupt?: AbortSignal): Promise<void> {
  const { client, close } = await connectTemporal(config);
  try {
    // The worker bundles its workflows before it polls: tens of seconds on a busy machine.
    await waitForBrainSync(client, parseSourceList(config.brain.sources).map((s) => s.name), { timeoutMs: 120_000, workerExited, interrupt });
  } finally {
    await close();
  }
}

/** The workers go first: a worker still running while the API is gone would take the agents' missing heartbeats for lost nodes. */
const STOP_FIRST = ['brain-worker', 'worker'];

async function stopAll(processes: StackProcess[], graceMs: number): Promise<void> {
  // Then reverse start order: the API and the Brain before the server they talk to.
  const order = [...processes.filter((p) => STOP_FIRST.includes(p.name)), ...[...processes].reverse().filter((p) => !STOP_FIRST.includes(p.name))];
  for (const p of order) await stopProcessGroup(p.pid, graceMs);
}

/** `task`, or a rejection with the abort reason as soon as `interrupt` aborts (what the task started is left to finish). */
function untilInterrupted<T>(task: Promise<T>, interrupt: AbortSignal | undefined): Promise<T> {
  if (!interrupt) return task;
  return Promise.race([
    task,
    new Promise<never>((_, reject) => {
      if (interrupt.aborted) reject(interrupt.reason);
      interrupt.addEventListener('abort', () => reject(interrupt.reason), { once: true });
    }),
  ]);
}

/**
 * Ctrl-C (SIGINT to the whole foreground pipeline), SIGTERM, SIGHUP, or the output's reader
 * going away (`| tee` killed by the same Ctrl-C) all abort `rover up`, which then stops what it
 * started. Later signals while it stops are reported, not obeyed: dying half-way would orphan
 * the rest.
 */
function interruptOnSignals(): AbortController {
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals | 'output closed') => {
    if (interrupt.signal.aborted) say(`${signal}: still stopping what rover up started; wait for "stopped"`);
    else interrupt.abort(new RoverUpInterrupted(signal));
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  whenOutputCloses(() => onSignal('output closed'));
  return interrupt;
}

class RoverUpInterrupted extends Error {
  constructor(readonly by: string) {
    super(`interrupted (${by})`);
  }
}

/** Exit status of a program ended by SIGINT, as shells report it (128 + 2). */
const EXIT_INTERRUPTED = 130;

export interface UpOptions {
  detach?: boolean;
  temporalPort?: string;
  uiPort?: string;
  apiPort?: string;
  demo: boolean;
}

/**
 * Starts the stack; returns the started processes (already written to .rover/up.json). When
 * `interrupt` aborts (Ctrl-C), stops what was started and throws the abort reason.
 */
export async function startStack(config: RoverConfig, interrupt?: AbortSignal): Promise<StackFile> {
  const existing = readStack(config);
  if (existing?.processes.some((p) => isAlive(p.pid))) {
    throw new Error(`a stack is already running (pids ${existing.processes.map((p) => p.pid).join(', ')}); run \`rover down\` first`);
  }
  mkdirSync(config.home, { recursive: true });
  const logs = path.join(config.home, 'logs');
  const started: StackProcess[] = [];
  const env = {
    ...process.env,
    ROVER_HOME: config.home,
    ROVER_TEMPORAL_ADDRESS: config.temporal.address,
    ROVER_NAMESPACE: config.temporal.namespace,
    ROVER_STORE_URL: config.storeUrl,
    ROVER_API_HOST: config.api.host,
    ROVER_API_PORT: String(config.api.port),
    ROVER_API_URL: config.api.url,
    // Jobs ask the standalone Brain process unless the user points them elsewhere.
    ROVER_BRAIN_PORT: String(config.brain.port),
    ROVER_BRAIN_URL: process.env.ROVER_BRAIN_URL ?? `http://${config.brain.host}:${config.brain.port}`,
    // The worker's metrics port too: a stack started beside another (a benchmark's) must not fall
    // back to the default one the other holds.
    ROVER_WORKER_METRICS_ADDRESS: config.workerMetricsAddress ?? 'off',
  };
  try {
    const cli = await sayWhileWaiting(untilInterrupted(resolveTemporalCli((m) => say(m)), interrupt), 'looking for or installing the temporal CLI', say);
    interrupt?.throwIfAborted();
    say(`starting Temporal dev server on ${config.temporal.address} (state in ${path.join(config.home, 'temporal.db')})`);
    const server = spawnDetached(
      cli,
      devServerArgs({
        port: config.temporal.port,
        uiPort: config.temporal.uiPort,
        namespace: config.temporal.namespace,
        dbFile: path.join(config.home, 'temporal.db'),
      }),
      { logFile: path.join(logs, 'temporal.log') },
    );
    started.push({ name: 'temporal', ...server });
    const serverExited = () => {
      interrupt?.throwIfAborted();
      return isAlive(server.pid) ? undefined : `see ${server.logFile}`;
    };
    await sayWhileWaiting(waitForTemporal(config.temporal.address, 90_000, serverExited), 'waiting for the Temporal dev server', say);

    interrupt?.throwIfAborted();
    say('starting Rover worker');
    const worker = roverEntrypoint('workers/main.ts');
    started.push({ name: 'worker', ...spawnDetached(worker.command, worker.args, { env, logFile: path.join(logs, 'worker.log') }) });

    say(`starting Rover API on ${config.api.url}`);
    const api = roverEntrypoint('api/main.ts');
    const apiProcess = spawnDetached(api.command, api.args, { env, logFile: path.join(logs, 'api.log') });
    started.push({ name: 'api', ...apiProcess });
    await sayWhileWaiting(waitForHttp(`${config.api.url}/healthz`, 60_000, () => isAlive(apiProcess.pid), interrupt), 'waiting for the Rover API', say);

    say(`starting the Brain on ${env.ROVER_BRAIN_URL} and its config-sync worker`);
    const brainWorker = roverEntrypoint('workers/brainMain.ts');
    const brainWorkerProcess = spawnDetached(brainWorker.command, brainWorker.args, { env, logFile: path.join(logs, 'brain-worker.log') });
    started.push({ name: 'brain-worker', ...brainWorkerProcess });
    const brain = roverEntrypoint('api/brainMain.ts');
    const brainProcess = spawnDetached(brain.command, brain.args, { env, logFile: path.join(logs, 'brain.log') });
    started.push({ name: 'brain', ...brainProcess });
    await sayWhileWaiting(waitForHttp(`http://${config.brain.host}:${config.brain.port}/healthz`, 60_000, () => isAlive(brainProcess.pid), interrupt), 'waiting for the Brain', say);
    const brainWorkerExited = () => (isAlive(brainWorkerProcess.pid) ? undefined : `see ${brainWorkerProcess.logFile}`);
    await sayWhileWaiting(untilInterrupted(waitForSourcesRead(config, brainWorkerExited, interrupt), interrupt), "waiting for the Brain's first read of its sources", say);

    const stack: StackFile = {
      startedAt: new Date().toISOString(),
      processes: started,
      webUiUrl: `http://127.0.0.1:${config.temporal.uiPort}`,
      apiUrl: config.api.url,
    };
    writeFileSync(stackFile(config), JSON.stringify(stack, null, 2));
    return stack;
  } catch (err) {
    say(interrupt?.aborted ? 'interrupted; stopping what was started' : `start failed, stopping what was started: ${err instanceof Error ? err.message : String(err)}`);
    await stopAll(started, config.timing.shutdownGraceMs);
    throw err;
  }
}

export function readStack(config: RoverConfig): StackFile | undefined {
  const file = stackFile(config);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as StackFile;
}

/**
 * Stops the stack's processes, then (unless `keepJobs`) the local nodes of every job. With
 * `keepJobs` the nodes train on and reconnect when the stack is back: agents retry the API
 * through the outage and the worker does not take the silence for a loss.
 */
export async function stopStack(config: RoverConfig, { keepJobs = false }: { keepJobs?: boolean } = {}): Promise<StackProcess[]> {
  const stack = readStack(config);
  if (!stack) return [];
  await stopAll(stack.processes, config.timing.shutdownGraceMs);
  if (!keepJobs) await stopLocalNodes(config);
  rmSync(stackFile(config), { force: true });
  return stack.processes;
}

/**
 * Local nodes outlive the worker by design; the stack going down takes them along so nothing is
 * left running. Each live node is first recorded lost with the platform as its cause (the worker
 * is already down, so nobody else judges it), then stopped: on the next `rover up` its job
 * relaunches it without spending maxNodeRelaunches.
 *
 * Each node goes the way the backend deletes one (stopLocalNode): SIGTERM to the agent alone,
 * the agent's own grace for its trainers plus a margin, then SIGKILL to whatever of the node is
 * left, found by environment. Stopping the agent's process group instead would orphan trainers:
 * they lead sessions of their own, and the agent would be SIGKILLed the moment its own grace
 * for them ended, before it could SIGKILL them. Lost nodes count too: their orphans may still
 * run when the worker went down before it could stop them.
 */
async function stopLocalNodes(config: RoverConfig): Promise<void> {
  const store = await openStore(config.storeUrl);
  try {
    const backend = new LocalBackend(store, config.home);
    const nodes = await store.nodes.listByBackend('local', ['launching', 'running', 'lost']);
    const down = { reason: 'the stack was stopped', platformCause: 'the stack was stopped (rover down)' };
    for (const n of nodes) {
      await store.transaction((tx) => recordNodeDown(tx, { jobId: n.jobId, nodeId: n.nodeId, incarnation: n.incarnation }, down, Date.now()));
    }
    await Promise.all(nodes.map((n) => backend.deleteNode(n, config.timing.shutdownGraceMs)));
  } finally {
    await store.close();
  }
}

/** The demo job's progress line until `until` settles; a failure to follow is reported, not fatal. */
async function followDemoJob(config: RoverConfig, job: string, until: Promise<void>): Promise<void> {
  try {
    const { client, close } = await connectTemporal(config);
    try {
      const handle = client.workflow.getHandle(jobWorkflowId(job));
      await followJob(client, config, handle, { until, startedAt: Date.now(), show: 'line', prefix: `rover up: ${job}: ` });
    } finally {
      await close();
    }
  } catch (err) {
    say(`cannot show the demo job's progress: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The environment that points other `rover` commands at ports `up` was given by flag ('' if none). */
function portExports(options: UpOptions): string {
  const moved = [
    ['ROVER_TEMPORAL_PORT', options.temporalPort],
    ['ROVER_UI_PORT', options.uiPort],
    ['ROVER_API_PORT', options.apiPort],
  ].filter(([name, value]) => value !== undefined && process.env[name!] !== value);
  return moved.map(([name, value]) => `${name}=${value}`).join(' ');
}

function configWithPorts(options: UpOptions): RoverConfig {
  const env = { ...process.env };
  if (options.temporalPort) env.ROVER_TEMPORAL_PORT = options.temporalPort;
  if (options.uiPort) env.ROVER_UI_PORT = options.uiPort;
  if (options.apiPort) env.ROVER_API_PORT = options.apiPort;
  return loadConfig(env);
}

export function registerUpCommands(
  program: Command,
  submitDemo: (config: RoverConfig, say: (message: string) => void) => Promise<string>,
): void {
  program
    .command('up')
    .option('--detach', 'start in the background and return; stop with `rover down`')
    .option('--temporal-port <port>', 'Temporal frontend port (default 7233, env ROVER_TEMPORAL_PORT)')
    .option('--ui-port <port>', 'Temporal Web UI port (default 8233, env ROVER_UI_PORT)')
    .option('--api-port <port>', 'Rover API port (default 8470, env ROVER_API_PORT)')
    .option('--no-demo', 'do not submit the demo job (examples/demo.yaml)')
    .action(async (options: UpOptions) => {
      const config = configWithPorts(options);
      const interrupt = interruptOnSignals();
      let stack: StackFile;
      try {
        stack = await startStack(config, interrupt.signal);
      } catch (err) {
        if (!(err instanceof RoverUpInterrupted)) throw err;
        say('stopped');
        process.exitCode = EXIT_INTERRUPTED;
        return;
      }
      say(`Temporal Web UI: ${stack.webUiUrl}`);
      say(`Rover API:       ${stack.apiUrl}`);
      say(`Temporal:        ${config.temporal.address} (namespace ${config.temporal.namespace})`);
      say(`logs:            ${path.join(config.home, 'logs')}`);
      const moved = portExports(options);
      if (moved) say(`other rover commands use the default ports unless told: export ${moved}`);
      let demoJob: string | undefined;
      if (options.demo) {
        try {
          demoJob = await submitDemo(config, say);
        } catch (err) {
          say('could not submit the demo job; stopping the stack');
          await stopStack(config);
          throw err;
        }
      }
      if (options.detach) {
        say('running in the background; stop it with `rover down`');
        return;
      }
      say('running; press Ctrl-C to stop');
      const stopRequested = new Promise<void>((resolve) => {
        // The watchdog interval also keeps the process alive while it waits for a signal.
        const stop = () => {
          clearInterval(watchdog);
          resolve();
        };
        if (interrupt.signal.aborted) stop();
        interrupt.signal.addEventListener('abort', stop, { once: true });
        const watchdog = setInterval(() => {
          const dead = stack.processes.find((p) => !isAlive(p.pid));
          if (dead) {
            say(`${dead.name} (pid ${dead.pid}) exited unexpectedly; see ${dead.logFile}`);
            process.exitCode = 1;
            stop();
          }
        }, 1000);
      });
      if (demoJob !== undefined) await followDemoJob(config, demoJob, stopRequested);
      await stopRequested;
      say('stopping');
      await stopStack(config);
      say('stopped');
    });

  program
    .command('down')
    .option('--keep-jobs', "leave the jobs' nodes training; they reconnect when the stack is back up")
    .action(async (options: { keepJobs?: boolean }) => {
      const stopped = await stopStack(loadConfig(), { keepJobs: options.keepJobs === true });
      const sayDown = sayAs('down');
      if (stopped.length === 0) sayDown('no stack is running');
      else sayDown(`stopped ${stopped.map((p) => `${p.name} (${p.pid})`).join(', ')}`);
    });
}
