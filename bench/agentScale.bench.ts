// The agent hot path at scale: N simulated agents against the real API process(es) and store.
// Each agent does what agent/agent.ts does, over the agent's own HTTP client (keep-alive sockets of
// its own, as a real agent process has):
// wait a random start delay (below N ms, at most 1 s, as the launch gives the agents), register, start heartbeating, ask for the
// node check, join, long-poll the round (waitMs 20 s, as the agent), then heartbeat once a second,
// each heartbeat held by the API up to that second (waitMs, as the agent: so every agent keeps a
// request open nearly all the time); a 429 is retried after its Retry-After plus jitter. Prints
// one line per case:
//   agentScale: store=sqlite replicas=1 nodes=1000 rendezvous_p99_ms=… rendezvous_max_ms=…
//     heartbeat_p50_ms=… heartbeat_p99_ms=… api_cpu_per_s=… timeouts=…
// rendezvous: from the last join answered to each agent knowing its rank; heartbeats: a steady
// window after every agent has its rank, each heartbeat's answer time past its hold (no round
// opens in the window, so the API holds each one the whole second: the rest is its work and the
// network); api_cpu_per_s: CPU seconds of the API process(es) per
// second of that window (/proc/<pid>/stat); timeouts: requests that hit the agent's 10 s timeout;
// shed: requests the API answered 429 (ROVER_API_MAX_IN_FLIGHT; BENCH_MAX_IN_FLIGHT sets it).
// The job sits between hangTimeout and startupTimeout with no step yet (trainers still starting):
// the hang check's expensive case, where it used to read every node on every heartbeat.
// Knobs: BENCH_NODES (default 1000,4000), BENCH_REPLICAS (default 1), BENCH_STORES (default
// sqlite,mysql; mysql needs ROVER_TEST_MYSQL_URL), BENCH_WINDOW_S (heartbeat window, default 60),
// BENCH_RENDEZVOUS_TIMEOUT_S (give up on ranks after this, default 300), BENCH_MAX_IN_FLIGHT (the
// API's ROVER_API_MAX_IN_FLIGHT; default the API's). Asserts nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { openSync, readSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { abortableSleep, HttpApiClient, ApiHttpError, ROUND_WAIT_MS, startDelayMs, withRetry } from '../agent/apiClient.ts';
import type { RoundStatus } from '../common/protocol.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { startJitterBoundMs } from '../common/startJitter.ts';
import { freePort } from '../deploy/local/devServer.ts';
import { openStore } from '../store/index.ts';
import { createMysqlDatabase } from '../store/testing.ts';
import { scratchDir } from './scratch.ts';

const list = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);
const NODES = list(process.env.BENCH_NODES ?? '1000,4000').map(Number);
const REPLICAS = list(process.env.BENCH_REPLICAS ?? '1').map(Number);
const STORES = list(process.env.BENCH_STORES ?? 'sqlite,mysql');
const MAX_IN_FLIGHT = process.env.BENCH_MAX_IN_FLIGHT;
const WINDOW_MS = Number(process.env.BENCH_WINDOW_S ?? 60) * 1000;
const RENDEZVOUS_TIMEOUT_MS = Number(process.env.BENCH_RENDEZVOUS_TIMEOUT_S ?? 300) * 1000;
const HEARTBEAT_MS = 1000;
const JOB = 'scale';
const TOKEN = randomBytes(16).toString('hex');
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const CLOCK_TICKS = 100; // USER_HZ on Linux: /proc/<pid>/stat counts CPU time in 1/100 s

interface Stats {
  /** Agents past each step, for BENCH_VERBOSE progress lines. */
  registered: number;
  joined: number;
  timeouts: number;
  /** Timeouts by request (register, nodeCheck, join, roundStatus, heartbeat): which part of the path falls behind. */
  timeoutsBy: Record<string, number>;
  /** Requests answered 429. */
  shed: number;
  errors: number;
  /** The first error that was not a timeout, for the log. */
  firstError?: string;
  /** performance.now() when the last join was answered. */
  lastJoinAt: number;
  /** performance.now() when each agent learned its rank. */
  rankedAt: number[];
  heartbeatMs: number[];
  /** Heartbeats that start inside [from, to) are measured. */
  window: { from: number; to: number };
}

/**
 * CPU seconds a process has used so far (user + system), read from its /proc/<pid>/stat. The file
 * is opened once, before the agents start: thousands of agents' sockets may use every descriptor.
 */
function cpuReader(pid: number): () => number {
  const fd = openSync(`/proc/${pid}/stat`, 'r');
  const buffer = Buffer.alloc(4096);
  return () => {
    const stat = buffer.toString('utf8', 0, readSync(fd, buffer, 0, buffer.length, 0));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5) (utime, stime); the slice starts at field 3.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  };
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * fetch over node:http with keep-alive sockets of one simulated agent alone, as a real agent (a
 * process of its own) has. The global fetch would put every simulated agent's connections in one
 * pool, which looks for a free connection by scanning them all: with thousands of long polls held
 * open, each request would cost O(N) in this process and the figures would measure that.
 */
function agentFetch(): typeof fetch {
  const sockets = new HttpAgent({ keepAlive: true });
  return ((input: string | URL, init: RequestInit = {}) =>
    new Promise<Response>((resolve, reject) => {
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(signal.reason);
      const req = httpRequest(new URL(String(input)), { method: init.method ?? 'GET', headers: init.headers as Record<string, string>, agent: sockets }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          signal?.removeEventListener('abort', onAbort);
          const headers = Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')] as [string, string]);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0, headers }));
        });
      });
      // A timeout or an abort rejects with the signal's reason, as fetch does (TimeoutError counts as a timeout).
      const onAbort = () => {
        req.destroy();
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) => {
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      });
      req.end(typeof init.body === 'string' ? init.body : undefined);
    })) as typeof fetch;
}

/** One simulated agent: the requests of agent/agent.ts, without trainers. */
async function agent(node: number, nodes: number, baseUrls: string[], stats: Stats, signal: AbortSignal): Promise<void> {
  // Like a real agent given every replica: it starts at replica node % count.
  const client = new HttpApiClient({ baseUrls, start: node, job: JOB, token: TOKEN, fetch: agentFetch() });
  const incarnation = 0;
  const host = `10.0.${node >> 8}.${node & 255}`;
  let round = 0;
  const call = <T>(request: string, fn: (signal: AbortSignal) => Promise<T>) =>
    withRetry(() => fn(signal), {
      signal,
      onRetry: (err) => {
        if ((err as Error).name === 'TimeoutError') {
          stats.timeoutsBy[request] = (stats.timeoutsBy[request] ?? 0) + 1;
          return void stats.timeouts++;
        }
        if (err instanceof ApiHttpError && err.status === 429) return void stats.shed++;
        stats.errors++;
        stats.firstError ??= String((err as Error).cause ?? err);
      },
    });
  const heartbeats = async () => {
    // One trainer process, no step yet; usage as the agent samples it.
    const processes = [{ localRank: 0, pid: 1000 + node, cpuPercent: 95, rssBytes: 2 ** 31 }];
    let pause = HEARTBEAT_MS;
    for (;;) {
      await abortableSleep(pause, signal);
      const sent = performance.now();
      await call('heartbeat', async (s) => {
        const started = performance.now();
        const reply = await client.heartbeat({ node, incarnation, round, step: null, processes, waitMs: HEARTBEAT_MS }, s);
        if (started >= stats.window.from && started < stats.window.to) stats.heartbeatMs.push(Math.max(0, performance.now() - started - HEARTBEAT_MS));
        return reply;
      });
      // One beat per interval, as the agent: an answer sooner (a round opened) waits out the rest.
      pause = Math.max(0, HEARTBEAT_MS - (performance.now() - sent));
    }
  };
  await abortableSleep(startDelayMs(startJitterBoundMs(nodes)), signal);
  await call('register', (s) => client.register({ node, incarnation, pid: 1000 + node, host }, s));
  stats.registered++;
  const beating = heartbeats().catch(() => {});
  await call('nodeCheck', (s) => client.nodeCheck({ node, incarnation, host, port: 1, secret: '0'.repeat(32) }, s));
  ({ round } = await call('join', (s) => client.join({ node, incarnation, host, freePort: 20_000 + (node % 40_000) }, s)));
  stats.lastJoinAt = Math.max(stats.lastJoinAt, performance.now());
  stats.joined++;
  let status: RoundStatus;
  for (;;) {
    status = await call('roundStatus', (s) => client.roundStatus(round, { node, incarnation }, s, ROUND_WAIT_MS));
    if (status.status !== 'open') break;
  }
  if (status.status !== 'closed') throw new Error(`node ${node}: round ${round} ${status.status}`);
  stats.rankedAt[node] = performance.now();
  await beating;
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stderr.write(`agentScale: gave up waiting for ${what} after ${timeoutMs} ms\n`);
  return false;
}

function startApi(home: string, storeUrl: string, port: number, index: number): ChildProcess {
  const log = openSync(path.join(home, `api-${index}.log`), 'a');
  const env: NodeJS.ProcessEnv = { ...process.env, ROVER_HOME: home, ROVER_STORE_URL: storeUrl, ROVER_API_HOST: '127.0.0.1', ROVER_API_PORT: String(port), ROVER_LOG_LEVEL: 'warn' };
  if (MAX_IN_FLIGHT) env.ROVER_API_MAX_IN_FLIGHT = MAX_IN_FLIGHT;
  delete env.ROVER_API_URL;
  // BENCH_API_PROFILE=<dir>: a V8 CPU profile of each API process, written when it stops.
  const profile = process.env.BENCH_API_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_API_PROFILE}`] : [];
  return spawn(process.execPath, [...profile, '--import', 'tsx', path.join(repoRoot, 'api/main.ts')], { env, stdio: ['ignore', log, log], cwd: repoRoot });
}

async function runCase(store: string, storeUrl: string, home: string, replicas: number, nodes: number): Promise<void> {
  const db = await openStore(storeUrl);
  const parsed = parseJobSpec({
    metadata: { name: JOB, user: 'bench' },
    spec: {
      nodes: { min: nodes },
      entrypoint: { command: 'true' },
      faultTolerance: { heartbeatInterval: '1s', heartbeatTimeout: '1h', hangTimeout: '2s', startupTimeout: '1h', hangAction: 'log' },
      diagnosis: { nodeCheck: 'off' },
      rendezvous: { joinTimeout: '1h' },
    },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  await db.jobs.create({ id: JOB, workflowId: `job-${JOB}`, user: 'bench', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: TOKEN });
  await db.transaction(async (tx) => {
    for (let nodeId = 0; nodeId < nodes; nodeId++) await tx.nodes.upsertLaunch({ jobId: JOB, nodeId, incarnation: 0, backend: 'local', status: 'launching' });
  });
  await db.close();

  const ports = await Promise.all(Array.from({ length: replicas }, () => freePort()));
  const apis = ports.map((port, i) => startApi(home, storeUrl, port, i));
  const abort = new AbortController();
  // Every agent's requests listen on this one signal.
  setMaxListeners(0, abort.signal);
  try {
    for (const port of ports) {
      const up = await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok ?? false, `API on port ${port}`, 60_000);
      if (!up) throw new Error(`API did not start; see ${home}/api-*.log`);
    }
    const cpuReaders = apis.map((api) => cpuReader(api.pid!));
    const apiCpu = () => cpuReaders.reduce((sum, read) => sum + read(), 0);
    const stats: Stats = { registered: 0, joined: 0, timeouts: 0, timeoutsBy: {}, shed: 0, errors: 0, lastJoinAt: 0, rankedAt: [], heartbeatMs: [], window: { from: Infinity, to: Infinity } };
    const failures: string[] = [];
    const agents = Array.from({ length: nodes }, (_, node) =>
      agent(node, nodes, ports.map((port) => `http://127.0.0.1:${port}`), stats, abort.signal).catch((err: Error) => {
        if (!abort.signal.aborted) failures.push(err.message);
      }),
    );
    const ranked = () => Object.keys(stats.rankedAt).length;
    const progress = process.env.BENCH_VERBOSE
      ? setInterval(() => process.stderr.write(`agentScale: registered=${stats.registered} joined=${stats.joined} ranked=${ranked()} timeouts=${stats.timeouts} shed=${stats.shed} errors=${stats.errors}\n`), 5000)
      : undefined;
    await waitFor(() => ranked() + failures.length >= nodes, 'every agent to know its rank', RENDEZVOUS_TIMEOUT_MS);
    clearInterval(progress);
    const rendezvous = stats.rankedAt.filter((t) => t !== undefined).map((t) => Math.max(0, t - stats.lastJoinAt));
    // Steady state: one heartbeat period to settle, then the measured window.
    stats.window = { from: performance.now() + HEARTBEAT_MS, to: performance.now() + HEARTBEAT_MS + WINDOW_MS };
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS));
    const cpuBefore = apiCpu();
    const measuredFrom = performance.now();
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const cpu = (apiCpu() - cpuBefore) / ((performance.now() - measuredFrom) / 1000);
    abort.abort();
    await Promise.all(agents);
    const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : 'n/a');
    console.log(
      `agentScale: store=${store} replicas=${replicas} nodes=${nodes} rendezvous_p99_ms=${ms(percentile(rendezvous, 99))} ` +
        `rendezvous_max_ms=${ms(rendezvous.length ? Math.max(...rendezvous) : NaN)} heartbeat_p50_ms=${ms(percentile(stats.heartbeatMs, 50))} ` +
        `heartbeat_p99_ms=${ms(percentile(stats.heartbeatMs, 99))} api_cpu_per_s=${cpu.toFixed(2)} timeouts=${stats.timeouts} ` +
        `ranked=${ranked()}/${nodes} heartbeats=${stats.heartbeatMs.length} errors=${stats.errors + failures.length} shed=${stats.shed}`,
    );
    if (failures.length) process.stderr.write(`agentScale: ${failures.length} agents failed, first: ${failures[0]}\n`);
    if (stats.timeouts > 0) process.stderr.write(`agentScale: timeouts by request: ${Object.entries(stats.timeoutsBy).map(([request, n]) => `${request}=${n}`).join(' ')}\n`);
    if (stats.firstError) process.stderr.write(`agentScale: first retried error: ${stats.firstError}\n`);
  } finally {
    abort.abort();
    // SIGTERM lets a profiled API write its profile; SIGKILL if it does not stop within 10 s.
    await Promise.all(
      apis.map(async (api) => {
        if (api.exitCode !== null || api.signalCode !== null) return;
        const exited = new Promise((r) => api.once('exit', r));
        api.kill('SIGTERM');
        const kill = setTimeout(() => api.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(kill);
      }),
    );
  }
}

async function sqliteCase(replicas: number, nodes: number): Promise<void> {
  const home = scratchDir('agent-scale');
  await runCase('sqlite', `sqlite:${path.join(home, 'rover.db')}`, home, replicas, nodes);
}

async function mysqlCase(baseUrl: string, replicas: number, nodes: number): Promise<void> {
  const home = scratchDir('agent-scale');
  const database = await createMysqlDatabase(baseUrl);
  try {
    await runCase('mysql', database.url, home, replicas, nodes);
  } finally {
    await database.drop();
  }
}

const mysqlUrl = process.env.BENCH_MYSQL_URL ?? process.env.ROVER_TEST_MYSQL_URL;
for (const store of STORES) {
  if (store === 'mysql' && !mysqlUrl) {
    console.log('agentScale: store=mysql skipped: set ROVER_TEST_MYSQL_URL (bash deploy/local/mariadb.sh prints one)');
    continue;
  }
  for (const replicas of REPLICAS) {
    for (const nodes of NODES) {
      if (store === 'mysql') await mysqlCase(mysqlUrl!, replicas, nodes);
      else await sqliteCase(replicas, nodes);
    }
  }
}
