// Least privilege end to end, on the real stack with each store dialect: a trainer's environment
// (and its agent's, which a trainer can read) holds no Rover secret but its own job's token,
// that token opens its own job only, and the store holds no usable token.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { acceptsConnection, jobOutcome, waitUntil } from './helpers.ts';
import { jobSpecInput, repoRoot } from './jobFixtures.ts';
import { startTestStack } from './stack.ts';

const OPERATOR = 'operator-secret-of-the-least-privilege-test';
/** Secrets of the worker's own environment that no job may see. */
const CANARIES = { MYSQL_PWD: 'canary-db-password-7f3a', AWS_SECRET_ACCESS_KEY: 'canary-cloud-secret-19c2' };

/** Rover variables a trainer may see (docs/operations.md, "What a training process can see"). */
const TRAINER_ROVER = new Set([
  'ROVER_API_URL', 'ROVER_JOB', 'ROVER_NODE', 'ROVER_INCARNATION', 'ROVER_TOKEN', 'ROVER_ROUND', 'ROVER_RESUME_STEP',
  'ROVER_CHECKPOINT_DIR', 'ROVER_AGENT_URL', 'ROVER_LOCAL_STACK', 'ROVER_CONFIG_VERSION',
]);
/** Rover variables a local agent is started with: the agent settings and the local backend's own. */
const AGENT_ROVER = new Set([
  'ROVER_API_URL', 'ROVER_JOB', 'ROVER_NODE', 'ROVER_INCARNATION', 'ROVER_TOKEN', 'ROVER_NPROC_PER_NODE', 'ROVER_ENTRYPOINT',
  'ROVER_MAX_PROCESS_RESTARTS', 'ROVER_HEARTBEAT_INTERVAL_MS', 'ROVER_SHUTDOWN_GRACE_MS', 'ROVER_CHECKPOINT_DIR',
  'ROVER_CHECKPOINT_FLASH', 'ROVER_LOG_LEVEL', 'ROVER_START_JITTER_MS', 'ROVER_MEMORY_LIMIT_BYTES', 'ROVER_LOCAL_STACK',
]);

type Dump = { env: Record<string, string>; agent_env: Record<string, string> };

describeEachStore('least privilege on the local backend', (h) => {
  it('gives a trainer no store, Temporal or database secret, and a token that opens its own job only', async () => {
    const storeUrl = await h.freshUrl();
    const stack = await startTestStack(`least privilege ${h.dialect}`, { ROVER_STORE_URL: storeUrl, ROVER_OPERATOR_TOKEN: OPERATOR, ...CANARIES });
    try {
      await Promise.all([stack.startWorker(), stack.startApi()]);
      const dump = (job: string) => path.join(stack.home, `env-${job}.json`);
      const submit = (job: string) => {
        const input = jobSpecInput(stack.home, job, { nodes: 1, nproc: 1 });
        const parsed = parseJobSpec({
          ...input,
          spec: { ...input.spec, entrypoint: { command: 'python3', args: ['test/trainers/env_dump.py', dump(job)], workdir: repoRoot, env: { NCCL_DEBUG: 'INFO' } } },
        });
        if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
        return submitJob(stack.client, parsed.spec, { taskQueue: stack.config.temporal.taskQueue });
      };
      const [a, b] = await Promise.all([submit('priv-a'), submit('priv-b')]);
      for (const handle of [a, b]) {
        const result = await jobOutcome(handle);
        expect(result.phase, result.reason ?? '').toBe('SUCCEEDED');
      }
      const seen = await waitUntil(() => (existsSync(dump('priv-a')) ? (JSON.parse(readFileSync(dump('priv-a'), 'utf8')) as Dump) : undefined), 'the trainer\'s dump');
      const { env, agent_env: agentEnv } = seen;

      // Nothing of the worker: no store URL (nor its database name or password), no Temporal
      // address, no operator token, none of the worker's other secrets; for the agent neither.
      const database = new URL(storeUrl.replace(/^sqlite:/, 'file:')).pathname.split('/').pop()!;
      const secrets = [storeUrl, database, stack.config.temporal.address, OPERATOR, ...Object.values(CANARIES)];
      for (const [who, vars] of [['trainer', env], ['agent', agentEnv]] as const) {
        expect(vars, `${who} environment readable`).not.toHaveProperty('__unreadable__');
        for (const name of ['ROVER_STORE_URL', 'ROVER_TEMPORAL_ADDRESS', 'ROVER_OPERATOR_TOKEN', 'ROVER_TEST_MYSQL_URL', ...Object.keys(CANARIES)]) {
          expect(vars, `${who}: ${name}`).not.toHaveProperty(name);
        }
        const text = JSON.stringify(vars);
        for (const secret of secrets) expect(text.includes(secret), `${who} environment holds ${secret}`).toBe(false);
      }
      const extraRover = (vars: Record<string, string>, allowed: Set<string>) => Object.keys(vars).filter((k) => k.startsWith('ROVER_') && !allowed.has(k));
      expect(extraRover(env, TRAINER_ROVER)).toEqual([]);
      expect(extraRover(agentEnv, AGENT_ROVER)).toEqual([]);
      // What a trainer legitimately needs is there: the spec's env, the torchrun and Rover variables.
      expect(env).toMatchObject({ NCCL_DEBUG: 'INFO', RANK: '0', WORLD_SIZE: '1', ROVER_JOB: 'priv-a', ROVER_NODE: '0', ROVER_INCARNATION: '0' });
      expect(agentEnv.PATH).toBe(process.env.PATH);
      // (python3 may be a pyenv shim, which puts its own directories in front.)
      expect(env.PATH!.endsWith(process.env.PATH!)).toBe(true);

      // Its token opens its own job, and nothing of the other job, on the API and on the Brain.
      const token = env.ROVER_TOKEN!;
      const api = stack.config.api.url;
      const get = (route: string) => fetch(`${api}${route}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
      expect(await get('/v1/jobs/priv-a/shards')).toBe(200);
      expect(await get('/v1/jobs/priv-b/shards')).toBe(403);
      expect(await get('/brain/v1/config?job=priv-a')).toBe(200);
      expect(await get('/brain/v1/config?job=priv-b')).toBe(403);
      expect(await get('/brain/v1/configs')).toBe(403);
      // The embedded stack's API listens on 127.0.0.1 only: another address of this machine is refused.
      const apiPort = Number(new URL(api).port);
      expect(await acceptsConnection('127.0.0.1', apiPort)).toBe(true);
      expect(await acceptsConnection('127.0.0.2', apiPort)).toBe(false);

      // The store holds digests only: no row carries the token, and neither does the file.
      const jobs = await stack.store.db.selectFrom('jobs').selectAll().execute();
      const ledgers = await stack.store.db.selectFrom('shardLedgers').selectAll().execute();
      expect(JSON.stringify([jobs, ledgers]).includes(token)).toBe(false);
      if (h.dialect === 'sqlite') {
        const dir = path.dirname(storeUrl.slice('sqlite:'.length));
        for (const file of readdirSync(dir)) expect(readFileSync(path.join(dir, file)).includes(token), file).toBe(false);
      }
    } finally {
      await stack.close();
    }
  }, 240_000);
});
