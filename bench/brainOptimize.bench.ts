// Brain optimize-request latency with 100,000 history rows in the store (job summaries) and
// 100,000 metric samples: POST /brain/v1/optimize for each stage, p50/p99 over many requests.
// SQLite always; MySQL too when ROVER_TEST_MYSQL_URL points at a database. Prints figures only.
import path from 'node:path';
import { buildBrainApi } from '../api/brainServer.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { METRIC_RSS_BYTES, METRIC_THROUGHPUT, openStore, type Store } from '../store/index.ts';
import { scratchDir } from './scratch.ts';

const HISTORY_ROWS = Number(process.env.BENCH_HISTORY_ROWS ?? 100_000);
const METRIC_ROWS = Number(process.env.BENCH_METRIC_ROWS ?? 100_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 300);
const NAMES = 1000;
const CHUNK = 500;

async function seed(store: Store): Promise<void> {
  const now = Date.now();
  for (let i = 0; i < HISTORY_ROWS; i += CHUNK) {
    const rows = Array.from({ length: Math.min(CHUNK, HISTORY_ROWS - i) }, (_, k) => {
      const n = i + k;
      return {
        jobId: `hist-${n}`, name: `model-${n % NAMES}`, user: `user-${n % 97}`, group: `group-${n % 13}`, cluster: 'local', entrypoint: 'python3 train.py',
        datasetSize: 1000, minNodes: 1, maxNodes: 8, initialNodes: 2, finalNodes: 1 + (n % 8), memoryBytes: 2 ** 31, cpu: 1,
        peakRssBytes: 2 ** 28 + (n % 1000) * 2 ** 20, peakCpu: 0.5 + (n % 10) / 10, phase: 'SUCCEEDED', runtimeMs: 60_000,
        createdAt: now - 1e9 + n, endedAt: now - 1e9 + n + 60_000,
      };
    });
    await store.db.insertInto('jobSummaries').values(rows).execute();
  }
  for (let i = 0; i < METRIC_ROWS; i += CHUNK) {
    const samples = Array.from({ length: Math.min(CHUNK, METRIC_ROWS - i) }, (_, k) => {
      const n = i + k;
      const job = `live-${n % 10}`;
      return n % 2 === 0
        ? { jobId: job, nodeId: n % 4, name: METRIC_RSS_BYTES, value: 2 ** 28 + n }
        : { jobId: job, name: METRIC_THROUGHPUT, value: 100 + (n % 7), labels: { nodes: String(1 + (n % 3)) } };
    });
    await store.metrics.record(samples);
  }
  for (let j = 0; j < 10; j++) {
    const parsed = parseJobSpec({
      metadata: { name: `model-${j}`, user: `user-${j}`, group: `group-${j}` },
      spec: { nodes: { min: 1, max: 8, initial: 2 }, entrypoint: { command: 'python3', args: ['train.py'] } },
    });
    if (!parsed.ok) throw new Error('bad bench spec');
    await store.jobs.create({ id: `live-${j}`, workflowId: `job-live-${j}`, user: `user-${j}`, group: `group-${j}`, backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: 't' });
  }
  await store.brainConfigs.publishSnapshot('bench', 1, Array.from({ length: 50 }, (_, c) => ({
    name: `cfg-${c}`, priority: c % 5, include: c % 2 ? { user: `user-${c}` } : {}, exclude: {}, configure: { optimizer: { margin: 0.1 + c / 1000 } },
  })));
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

async function run(label: string, url: string): Promise<void> {
  const store = await openStore(url);
  const t0 = performance.now();
  await seed(store);
  const seedMs = performance.now() - t0;
  // As the worker asks: with the operator token (each request also pays the token check).
  const operator = 'operator-secret-for-the-bench';
  const app = await buildBrainApi({ config: loadConfig({ ROVER_OPERATOR_TOKEN: operator }), store, logger: createLogger('bench', 'silent') });
  await app.ready();
  console.log(`${label}: seeded ${HISTORY_ROWS} job summaries + ${METRIC_ROWS} metric samples in ${(seedMs / 1000).toFixed(1)} s`);
  for (const stage of ['initial', 'oom', 'running'] as const) {
    const times: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const body = { job: `live-${i % 10}`, stage, nodeId: i % 4, incarnation: 0, currentNodes: 1 + (i % 3) };
      const start = performance.now();
      const res = await app.inject({ method: 'POST', url: '/brain/v1/optimize', payload: body, headers: { authorization: `Bearer ${operator}` } });
      times.push(performance.now() - start);
      if (res.statusCode !== 200) throw new Error(`${stage}: HTTP ${res.statusCode} ${res.body}`);
    }
    times.sort((a, b) => a - b);
    console.log(`${label}  ${stage.padEnd(8)} n=${REQUESTS}  p50 ${pct(times, 0.5).toFixed(2)} ms  p99 ${pct(times, 0.99).toFixed(2)} ms  max ${times.at(-1)!.toFixed(2)} ms`);
  }
  await app.close();
  await store.close();
}

const dir = scratchDir('brain');
await run('sqlite', `sqlite:${path.join(dir, 'brain.db')}`);
const mysql = process.env.ROVER_TEST_MYSQL_URL;
if (mysql) {
  // A fresh database next to the test one, dropped afterwards.
  const { createConnection } = await import('mysql2/promise');
  const name = `rover_bench_${process.pid}`;
  const admin = await createConnection(mysql);
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  const url = new URL(mysql);
  url.pathname = `/${name}`;
  try {
    await run('mysql ', url.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await admin.end();
  }
} else console.log('mysql: skipped (set ROVER_TEST_MYSQL_URL)');

