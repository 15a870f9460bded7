// Chaos soak: K sharded jobs with flash checkpoints (2 nodes each, local backend) while faults
// drawn from a seed hit the control plane — SIGKILL of the worker, each API replica, the Brain,
// the Temporal dev server and (MySQL) the store's MariaDB server, alone or together, and planned
// `rover down --keep-jobs` / up — then every job must finish SUCCEEDED with exact shard and
// checkpoint accounting (test/chaos.ts).
//   BENCH_SEED (default: random, printed)  BENCH_KILLS (10)  BENCH_JOBS (2)
//   BENCH_STORE=sqlite (one API) | mysql (two API replicas and a MariaDB server of the stack's own,
//     started from /usr/sbin/mariadbd in the stack's home: the shared one is never killed)
//   BENCH_SAMPLES per job (default 1200 × kills, so the faults land while the jobs train)
//   BENCH_STEP_TIME seconds per trainer step (0.2)
//   BENCH_DOWN_S seconds a killed part stays down before its restart (0: at once); nodes_lost in
//     the summary counts nodes judged lost (a store outage past the heartbeatTimeout, 30 s, loses none)
// Prints `chaos: seed=… kills=… jobs=… succeeded=… shards_exact=… max_pause_s=…`; exits 1 on any broken promise.
import { DOWN_UP, runChaosSoak, summary } from '../test/chaos.ts';
import { ChaosStack } from '../test/chaosStack.ts';

const seed = Number(process.env.BENCH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const kills = Number(process.env.BENCH_KILLS ?? 10);
const jobs = Number(process.env.BENCH_JOBS ?? 2);
const storeKind = process.env.BENCH_STORE ?? 'sqlite';
const samples = Number(process.env.BENCH_SAMPLES ?? 1200 * Math.max(kills, 2));
const stepTime = Number(process.env.BENCH_STEP_TIME ?? 0.2);
const downS = Number(process.env.BENCH_DOWN_S ?? 0);
if (!['sqlite', 'mysql'].includes(storeKind)) throw new Error(`BENCH_STORE must be sqlite or mysql (got ${storeKind})`);

console.log(`chaos: seed=${seed} store=${storeKind} kills=${kills} jobs=${jobs} samples=${samples} step_time=${stepTime} down_s=${downS} (BENCH_SEED=${seed} reproduces the plan)`);
const store = storeKind as 'sqlite' | 'mysql';
const stack = await ChaosStack.start({ store, replicas: store === 'mysql' ? 2 : 1 });
const started = Date.now();
let failed = true;
try {
  const result = await runChaosSoak(stack, {
    seed,
    kills,
    jobs,
    faults: [...stack.parts, DOWN_UP],
    required: store === 'mysql' ? ['store'] : [],
    samples,
    stepTime,
    downMs: downS * 1000,
    window: [0.05, 0.9],
    log: (line) => console.log(line),
  });
  for (const p of result.problems) console.log(`problem: ${p}`);
  console.log(`${summary(seed, result)} store=${storeKind} wall_s=${Math.round((Date.now() - started) / 1000)}`);
  failed = result.problems.length > 0;
} finally {
  await stack.close();
  if (failed) console.log(`logs kept in ${stack.home}`);
}
process.exit(failed ? 1 : 0);
