// Chaos soak: K sharded jobs with flash checkpoints (2 nodes each, local backend) while faults
// drawn from a seed hit the control plane — SIGKILL of the worker, each API replica, the Brain and
// the Temporal dev server, alone or together, and planned `rover down --keep-jobs` / up — then
// every job must finish SUCCEEDED with exact shard and checkpoint accounting (test/chaos.ts).
//   BENCH_SEED (default: random, printed)  BENCH_KILLS (10)  BENCH_JOBS (2)
//   BENCH_STORE=sqlite (one API) | mysql (two API replicas; ROVER_TEST_MYSQL_URL)
//   BENCH_SAMPLES per job (default 1200 × kills, so the faults land while the jobs train)
//   BENCH_STEP_TIME seconds per trainer step (0.2)
// The store itself is not killed: the machine's MariaDB is shared with the test suite.
// Prints `chaos: seed=… kills=… jobs=… succeeded=… shards_exact=… max_pause_s=…`; exits 1 on any broken promise.
import { createMysqlDatabase, MYSQL_URL_ENV } from '../store/testing.ts';
import { DOWN_UP, runChaosSoak, summary } from '../test/chaos.ts';
import { ChaosStack } from '../test/chaosStack.ts';

const seed = Number(process.env.BENCH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const kills = Number(process.env.BENCH_KILLS ?? 10);
const jobs = Number(process.env.BENCH_JOBS ?? 2);
const storeKind = process.env.BENCH_STORE ?? 'sqlite';
const samples = Number(process.env.BENCH_SAMPLES ?? 1200 * Math.max(kills, 2));
const stepTime = Number(process.env.BENCH_STEP_TIME ?? 0.2);
if (!['sqlite', 'mysql'].includes(storeKind)) throw new Error(`BENCH_STORE must be sqlite or mysql (got ${storeKind})`);
const mysqlUrl = process.env[MYSQL_URL_ENV];
if (storeKind === 'mysql' && !mysqlUrl) throw new Error(`BENCH_STORE=mysql needs ${MYSQL_URL_ENV} (bash deploy/local/mariadb.sh prints it)`);

console.log(`chaos: seed=${seed} store=${storeKind} kills=${kills} jobs=${jobs} samples=${samples} step_time=${stepTime} (BENCH_SEED=${seed} reproduces the plan)`);
const database = storeKind === 'mysql' ? await createMysqlDatabase(mysqlUrl!) : undefined;
const stack = await ChaosStack.start({ replicas: database ? 2 : 1, ...(database && { storeUrl: database.url }) });
const started = Date.now();
let failed = true;
try {
  const result = await runChaosSoak(stack, {
    seed,
    kills,
    jobs,
    faults: [...stack.parts, DOWN_UP],
    samples,
    stepTime,
    window: [0.05, 0.9],
    log: (line) => console.log(line),
  });
  for (const p of result.problems) console.log(`problem: ${p}`);
  console.log(`${summary(seed, result)} store=${storeKind} wall_s=${Math.round((Date.now() - started) / 1000)}`);
  failed = result.problems.length > 0;
} finally {
  await stack.close();
  await database?.drop();
  if (failed) console.log(`logs kept in ${stack.home}`);
}
process.exit(failed ? 1 : 0);
