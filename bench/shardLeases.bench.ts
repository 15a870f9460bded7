// Shard leases per second with 64 concurrent leasers, on SQLite and MySQL. Each leaser leases
// one shard, reports it done, and goes again until the dataset is exhausted (a lease + a done
// per shard, as a trainer does). MySQL runs when ROVER_TEST_MYSQL_URL (or BENCH_MYSQL_URL) is set.
// Knobs: BENCH_SHARDS (default 10000), BENCH_LEASERS (default 64).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { openStore } from '../store/index.ts';

const SHARDS = Number(process.env.BENCH_SHARDS ?? 10_000);
const LEASERS = Number(process.env.BENCH_LEASERS ?? 64);

async function bench(label: string, url: string): Promise<void> {
  const store = await openStore(url);
  try {
    await store.shards.createEpoch('bench', 0, Array.from({ length: SHARDS }, (_, i) => ({ startIndex: i, endIndex: i + 1 })));
    let leases = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: LEASERS }, async (_, i) => {
        const owner = `n${i}i0r0g1`;
        for (;;) {
          const [shard] = await store.shards.leaseNext('bench', owner, 1, Date.now(), 60_000);
          if (!shard) return;
          leases += 1;
          await store.shards.complete({ jobId: 'bench', epoch: 0, shardIndex: shard.shardIndex }, owner, 1);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const progress = await store.shards.progress('bench');
    console.log(
      `${label.padEnd(7)} ${LEASERS} leasers, ${SHARDS} shards: ${(leases / seconds).toFixed(0)} leases/s ` +
        `(lease + done each; ${seconds.toFixed(1)} s; done ${progress.done}/${progress.total})`,
    );
  } finally {
    await store.close();
  }
}

const dir = mkdtempSync(path.join(tmpdir(), 'rover-bench-'));
try {
  await bench('sqlite', `sqlite:${path.join(dir, 'bench.db')}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const mysqlUrl = process.env.BENCH_MYSQL_URL ?? process.env.ROVER_TEST_MYSQL_URL;
if (!mysqlUrl) {
  console.log('mysql   skipped: set ROVER_TEST_MYSQL_URL (bash deploy/local/mariadb.sh prints one)');
} else {
  // A throwaway database; its name is generated here, never from input.
  const name = `rover_bench_${randomBytes(4).toString('hex')}`;
  const admin = await createConnection(mysqlUrl);
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  try {
    const url = new URL(mysqlUrl);
    url.pathname = `/${name}`;
    await bench('mysql', url.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await admin.end();
  }
}
