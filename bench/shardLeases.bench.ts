// Shard leases per second with 64 concurrent leasers, on SQLite and MySQL. Each leaser leases
// `count` shards, reports them done as one step, and goes again until the dataset is exhausted
// (a lease + a done per step, as a trainer does). Two paths:
//   path=store  the repository directly, one transaction per lease and per shard done (the
//               per-lease cost of the store alone, in this process);
//   path=ledger the trainer service the API routes call (api/ledger.ts LedgerService), in this
//               process: round checks, poison rules and the group commit, no HTTP;
//   path=api    the real API in its own process, each leaser sending the trainer protocol's
//               requests over HTTP keep-alive (node:http): HTTP, auth and parsing on top of
//               path=ledger. Not the trainer clients' fetch: on the 2-core machine 64 loops of
//               fetch drove 1,600 /healthz requests per second, of node:http 8,000; the bench's
//               client would measure itself, and real trainers run on other machines.
// Prints one line per case, with the check that every shard was done exactly once:
//   shardLeases: store=sqlite path=api leasers=64 count=1 leases_per_s=… requests_per_s=…
//     lease_p50_ms=… lease_p99_ms=… api_cpu_per_s=… done=10000/10000 exactly_once=yes double_leases=0
// exactly_once: every shard counted by exactly one done report, none refused, and the store says
// all are done; double_leases: shards handed to a leaser while another still held them.
// MySQL runs when ROVER_TEST_MYSQL_URL (or BENCH_MYSQL_URL) is set. Knobs: BENCH_SHARDS (default
// 10000), BENCH_LEASERS (default 64), BENCH_COUNTS (shards per lease, default 1,4), BENCH_PATHS
// (default store,ledger,api), BENCH_STORES (default sqlite,mysql), BENCH_API_PROFILE (a folder:
// CPU profile of the API process). Asserts nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, readSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LedgerService } from '../api/ledger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { freePort } from '../deploy/local/devServer.ts';
import { openStore, type Store } from '../store/index.ts';
import { createMysqlDatabase } from '../store/testing.ts';
import { scratchDir } from './scratch.ts';

const list = (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean);
const SHARDS = Number(process.env.BENCH_SHARDS ?? 10_000);
const LEASERS = Number(process.env.BENCH_LEASERS ?? 64);
const COUNTS = list(process.env.BENCH_COUNTS ?? '1,4').map(Number);
const PATHS = list(process.env.BENCH_PATHS ?? 'store,ledger,api');
const STORES = list(process.env.BENCH_STORES ?? 'sqlite,mysql');
const JOB = 'bench';
const TOKEN = randomBytes(16).toString('hex');
/** 64 leasers are 8 nodes of 8 ranks each. */
const RANKS_PER_NODE = 8;
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const CLOCK_TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s

/** What the leasers saw: leases, per-shard done counts, and shards leased while held elsewhere. */
class Tally {
  leases = 0;
  requests = 0;
  doubleLeases = 0;
  refused = 0;
  leaseMs: number[] = [];
  private readonly held = new Map<string, number>();
  private readonly counted = new Map<string, number>();

  leased(leaser: number, keys: string[]): void {
    this.leases += keys.length;
    for (const k of keys) {
      if (this.held.has(k)) this.doubleLeases += 1;
      this.held.set(k, leaser);
    }
  }

  /** The leaser lets go of `keys` as it sends its report: from then on another may get them. */
  released(keys: string[]): void {
    for (const k of keys) this.held.delete(k);
  }

  done(keys: string[], countedKeys: string[]): void {
    this.refused += keys.length - countedKeys.length;
    for (const k of countedKeys) this.counted.set(k, (this.counted.get(k) ?? 0) + 1);
  }

  exactlyOnce(storeDone: number): boolean {
    return this.refused === 0 && this.counted.size === SHARDS && [...this.counted.values()].every((n) => n === 1) && storeDone === SHARDS;
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function cpuReader(pid: number): () => number {
  const fd = openSync(`/proc/${pid}/stat`, 'r');
  const buffer = Buffer.alloc(4096);
  return () => {
    const stat = buffer.toString('utf8', 0, readSync(fd, buffer, 0, buffer.length, 0));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  };
}

const keyOf = (s: { epoch: number; shardIndex: number }) => `${s.epoch}/${s.shardIndex}`;

function report(fields: Record<string, string | number>): void {
  console.log(`shardLeases: ${Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(' ')}`);
}

/** The repository directly: leaseNext + complete, one transaction each. */
async function storeCase(store: string, url: string, count: number): Promise<void> {
  const db = await openStore(url);
  try {
    await db.shards.createEpoch(JOB, 0, Array.from({ length: SHARDS }, (_, i) => ({ startIndex: i, endIndex: i + 1 })));
    const leasers = Array.from({ length: LEASERS }, (_, i): Leaser => {
      const owner = `n${Math.floor(i / RANKS_PER_NODE)}i0r${i}g1`;
      return {
        lease: async (n) => {
          const shards = await db.shards.leaseNext(JOB, owner, n, Date.now(), 3_600_000);
          return { shards, finished: shards.length === 0 };
        },
        done: async (step, shards) => {
          let counted = 0;
          for (const s of shards) if (await db.shards.complete({ jobId: JOB, ...s }, owner, step)) counted += 1;
          return counted;
        },
      };
    });
    const { tally, seconds } = await drive(leasers, count);
    const progress = await db.shards.progress(JOB);
    report({
      store, path: 'store', leasers: LEASERS, count, ...rates(tally, seconds),
      seconds: seconds.toFixed(1), done: `${progress.done}/${progress.total}`,
      exactly_once: tally.exactlyOnce(progress.done) ? 'yes' : 'NO', double_leases: tally.doubleLeases,
    });
  } finally {
    await db.close();
  }
}

function startApi(home: string, storeUrl: string, port: number): ChildProcess {
  const log = openSync(path.join(home, 'api.log'), 'a');
  const env: NodeJS.ProcessEnv = { ...process.env, ROVER_HOME: home, ROVER_STORE_URL: storeUrl, ROVER_API_HOST: '127.0.0.1', ROVER_API_PORT: String(port), ROVER_LOG_LEVEL: 'warn' };
  delete env.ROVER_API_URL;
  // BENCH_API_PROFILE=<dir>: a V8 CPU profile of the API process, written when it stops.
  const profile = process.env.BENCH_API_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_API_PROFILE}`] : [];
  return spawn(process.execPath, [...profile, '--import', 'tsx', path.join(repoRoot, 'api/main.ts')], { env, stdio: ['ignore', log, log], cwd: repoRoot });
}

/** The bench job (a dataset of SHARDS shards, leases of an hour) and its closed round 1. */
async function createJob(db: Store): Promise<void> {
  const nodes = Math.ceil(LEASERS / RANKS_PER_NODE);
  const parsed = parseJobSpec({
    metadata: { name: JOB, user: 'bench' },
    spec: { nodes: { min: nodes }, entrypoint: { command: 'true' }, dataset: { size: SHARDS * 10, shardSize: 10, leaseTimeout: '1h' } },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  await db.jobs.create({ id: JOB, workflowId: `job-${JOB}`, user: 'bench', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: TOKEN });
  await db.rendezvous.openRound({ jobId: JOB, round: 1, minNodes: 1, maxNodes: nodes });
  for (let n = 0; n < nodes; n++) await db.rendezvous.join({ jobId: JOB, round: 1, nodeId: n, incarnation: 0, host: 'h' });
  await db.rendezvous.closeRound({ jobId: JOB, round: 1, ranks: Array.from({ length: nodes }, (_, n) => ({ nodeId: n, rank: n })), masterAddr: 'h', masterPort: 1 });
}

/** A trainer as the bench drives it: lease `count`, report them done as one step. */
interface Leaser {
  lease(count: number): Promise<{ shards: { epoch: number; shardIndex: number }[]; finished: boolean }>;
  done(step: number, shards: { epoch: number; shardIndex: number }[]): Promise<number>;
}

/** Runs every leaser until the dataset is finished; returns what they saw and the seconds it took. */
async function drive(leasers: Leaser[], count: number): Promise<{ tally: Tally; seconds: number }> {
  const tally = new Tally();
  const started = performance.now();
  await Promise.all(
    leasers.map(async (trainer, i) => {
      for (let step = 1; ; ) {
        const t0 = performance.now();
        const { shards, finished } = await trainer.lease(count);
        tally.leaseMs.push(performance.now() - t0);
        tally.requests += 1;
        if (shards.length === 0) {
          if (finished) return;
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        const keys = shards.map(keyOf);
        tally.leased(i, keys);
        tally.released(keys);
        tally.requests += 1;
        const counted = await trainer.done(step++, shards);
        // The reply counts, it does not name: all or (on a refusal) none are credited.
        tally.done(keys, counted === keys.length ? keys : []);
      }
    }),
  );
  return { tally, seconds: (performance.now() - started) / 1000 };
}

function rates(tally: Tally, seconds: number) {
  return {
    leases_per_s: (tally.leases / seconds).toFixed(0),
    requests_per_s: (tally.requests / seconds).toFixed(0),
    lease_p50_ms: percentile(tally.leaseMs, 50).toFixed(1),
    lease_p99_ms: percentile(tally.leaseMs, 99).toFixed(1),
  };
}

/** LedgerService in this process, as the routes call it: one service, 64 concurrent trainers. */
async function ledgerCase(store: string, url: string, count: number): Promise<void> {
  const db = await openStore(url);
  try {
    await createJob(db);
    const job = (await db.jobs.get(JOB))!;
    const ledger = new LedgerService(db, Date.now);
    const ref = (i: number) => ({ node: Math.floor(i / RANKS_PER_NODE), incarnation: 0, rank: i, round: 1 });
    // Untimed: the first lease creates the ledger and the epoch's rows; give the shard back.
    const first = await ledger.lease(job, { ...ref(0), count: 1 });
    await ledger.giveBack(job, { ...ref(0), shards: first.shards.map((s) => ({ epoch: s.epoch, shardIndex: s.shardIndex })) });
    const leasers = Array.from({ length: LEASERS }, (_, i): Leaser => ({
      lease: (n) => ledger.lease(job, { ...ref(i), count: n }),
      done: async (step, shards) => (await ledger.done(job, { ...ref(i), step, shards: shards.map((s) => ({ epoch: s.epoch, shardIndex: s.shardIndex })) })).counted,
    }));
    const cpuBefore = process.cpuUsage();
    const { tally, seconds } = await drive(leasers, count);
    const cpu = process.cpuUsage(cpuBefore);
    const progress = await db.shards.progress(JOB);
    report({
      store, path: 'ledger', leasers: LEASERS, count, ...rates(tally, seconds),
      cpu_per_s: ((cpu.user + cpu.system) / 1e6 / seconds).toFixed(2), seconds: seconds.toFixed(1), done: `${progress.done}/${progress.total}`,
      exactly_once: tally.exactlyOnce(progress.done) ? 'yes' : 'NO', double_leases: tally.doubleLeases,
    });
  } finally {
    await db.close();
  }
}

/** POST `body` as JSON with the job's token over `agent`; the reply's JSON, or an error for a non-200. */
function post(agent: http.Agent, url: string, body: unknown): Promise<any> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`POST ${url}: HTTP ${res.statusCode}: ${text}`))));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** The real API over HTTP: each leaser a trainer's lease and done requests. */
async function apiCase(store: string, url: string, home: string, count: number): Promise<void> {
  const db = await openStore(url);
  await createJob(db);
  const port = await freePort();
  const api = startApi(home, url, port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: LEASERS });
  try {
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    while (!(await fetch(`${base}/healthz`).catch(() => undefined))?.ok) {
      if (Date.now() > deadline || api.exitCode !== null) throw new Error(`API did not start; see ${home}/api.log`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const shardsUrl = (what: string) => `${base}/v1/jobs/${JOB}/shards/${what}`;
    const ref = (i: number) => ({ node: Math.floor(i / RANKS_PER_NODE), incarnation: 0, rank: i, round: 1 });
    const keys = (shards: { epoch: number; shardIndex: number }[]) => shards.map((s) => ({ epoch: s.epoch, shardIndex: s.shardIndex }));
    // Untimed: the first lease creates the ledger and the epoch's rows; give the shard back.
    const first = await post(agent, shardsUrl('lease'), { ...ref(0), count: 1 });
    await post(agent, shardsUrl('giveback'), { ...ref(0), shards: keys(first.shards) });
    const clients = Array.from({ length: LEASERS }, (_, i): Leaser => ({
      lease: (n) => post(agent, shardsUrl('lease'), { ...ref(i), count: n }),
      done: async (step, shards) => (await post(agent, shardsUrl('done'), { ...ref(i), step, shards: keys(shards) })).counted,
    }));
    const cpu = cpuReader(api.pid!);
    const cpuBefore = cpu();
    const clientBefore = process.cpuUsage();
    const { tally, seconds } = await drive(clients, count);
    const apiCpu = (cpu() - cpuBefore) / seconds;
    const clientUsage = process.cpuUsage(clientBefore);
    const clientCpu = (clientUsage.user + clientUsage.system) / 1e6 / seconds;
    const progress = await db.shards.progress(JOB);
    report({
      store, path: 'api', leasers: LEASERS, count, ...rates(tally, seconds),
      api_cpu_per_s: apiCpu.toFixed(2), client_cpu_per_s: clientCpu.toFixed(2), seconds: seconds.toFixed(1), done: `${progress.done}/${progress.total}`,
      exactly_once: tally.exactlyOnce(progress.done) ? 'yes' : 'NO', double_leases: tally.doubleLeases,
    });
  } finally {
    agent.destroy();
    await db.close();
    if (api.exitCode === null && api.signalCode === null) {
      const exited = new Promise((r) => api.once('exit', r));
      api.kill('SIGTERM');
      const kill = setTimeout(() => api.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(kill);
    }
  }
}

/** Each case on a fresh database: a SQLite file in a temp folder, or a throwaway MySQL database. */
async function withDatabase(store: string, run: (url: string, home: string) => Promise<void>): Promise<void> {
  const home = scratchDir('shard-leases');
  if (store === 'sqlite') return run(`sqlite:${path.join(home, 'bench.db')}`, home);
  const database = await createMysqlDatabase(mysqlUrl!);
  try {
    await run(database.url, home);
  } finally {
    await database.drop();
  }
}

const mysqlUrl = process.env.BENCH_MYSQL_URL ?? process.env.ROVER_TEST_MYSQL_URL;
for (const store of STORES) {
  if (store === 'mysql' && !mysqlUrl) {
    console.log('shardLeases: store=mysql skipped: set ROVER_TEST_MYSQL_URL (bash deploy/local/mariadb.sh prints one)');
    continue;
  }
  for (const via of PATHS) {
    for (const count of COUNTS) {
      await withDatabase(store, (url, home) =>
        via === 'store' ? storeCase(store, url, count) : via === 'ledger' ? ledgerCase(store, url, count) : apiCase(store, url, home, count),
      );
    }
  }
}
