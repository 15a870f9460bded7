// The chaos soak's short variant (bench/chaos.bench.ts is the long one): one sharded job with
// flash checkpoints on its own stack (own Temporal dev server, so it can be killed) survives 3
// faults drawn from a printed seed (CHAOS_SEED=<n> replays a plan): SIGKILL of the worker, an API
// replica, the Brain, the Temporal server or (MySQL) the store's MariaDB server, alone or
// together, or a planned rover down --keep-jobs / up. SQLite with one API; MySQL with two API
// replicas and a MariaDB server of the stack's own (ROVER_TEST_MYSQL_URL only says MySQL is
// there: killing the shared server would break other tests), killed at least once per plan.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MYSQL_URL_ENV } from '../store/testing.ts';
import { DOWN_UP, runChaosSoak, summary } from './chaos.ts';
import { ChaosStack } from './chaosStack.ts';

const mysqlUrl = process.env[MYSQL_URL_ENV] || undefined;
const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

for (const dialect of ['sqlite', 'mysql'] as const) {
  const skip = dialect === 'mysql' && !mysqlUrl && process.env.CI !== 'true';
  describe.skipIf(skip)(`chaos soak (${dialect})`, () => {
    let stack: ChaosStack;

    beforeAll(async () => {
      if (dialect === 'mysql' && !mysqlUrl) throw new Error(`MySQL required in CI: set ${MYSQL_URL_ENV}`);
      stack = await ChaosStack.start({ store: dialect, replicas: dialect === 'mysql' ? 2 : 1 });
    }, 600_000);
    afterAll(async () => {
      await stack?.close();
    });

    it(`finishes a sharded job SUCCEEDED with exact shard and checkpoint accounting through 3 faults (CHAOS_SEED=${seed})`, async () => {
      const result = await runChaosSoak(stack, {
        seed,
        kills: 3,
        jobs: 1,
        faults: [...stack.parts, DOWN_UP],
        // A store outage must not break a job: every MySQL plan kills the store at least once.
        required: dialect === 'mysql' ? ['store'] : [],
        // Killed parts stay down 1.5 s on MySQL: long enough that agents must meet the store's outage.
        ...(dialect === 'mysql' && { downMs: 1500 }),
        samples: 2400,
        stepTime: 0.5,
        // Early enough that all three land while the job trains (about 60 s of steps), even when
        // a loaded machine takes tens of seconds per restart.
        window: [0.05, 0.35],
        log: (line) => console.log(`${dialect} ${line}`),
      });
      console.log(`${summary(seed, result)} store=${dialect} (logs in ${stack.home})`);
      expect(result.problems).toEqual([]);
      expect(result.kills).toHaveLength(3);
      expect(result).toMatchObject({ jobs: 1, succeeded: 1, shardsExact: 1 });
    }, 900_000);
  });
}
