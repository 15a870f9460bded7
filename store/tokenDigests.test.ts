// Job tokens at rest, on both dialects: rows hold digests only, and a store from before the
// change has its plaintext tokens hashed by the migration (runs keep their ledger and history).
import { Kysely, Migrator } from 'kysely';
import { expect, it } from 'vitest';
import { historyKey } from './jobHistory.ts';
import { digestHex, tokenDigest, tokenMatches } from '../common/tokens.ts';
import { dialectForUrl } from './connect.ts';
import type { NewJob, Store } from './index.ts';
import { migrationProvider } from './migrations.ts';
import { describeEachStore, testJobSpec } from './testing.ts';

const TOKEN_MIGRATION = '2026_12_01_0200_token_digests';

function job(id: string, token: string): NewJob {
  return { id, workflowId: `job-${id}`, user: 'ada', group: 'ml', backend: 'local', spec: testJobSpec(), phase: 'RUNNING', token };
}

/** Every value of every row of the tables that ever held tokens, as one string. */
async function tokenTables(store: Store): Promise<string> {
  const jobs = await store.db.selectFrom('jobs').selectAll().execute();
  const ledgers = await store.db.selectFrom('shardLedgers').selectAll().execute();
  const summaries = await store.db.selectFrom('jobSummaries').selectAll().execute();
  return JSON.stringify([jobs, ledgers, summaries]);
}

describeEachStore('job token digests', (h) => {
  it('stores the digest of a job token, never the token, on create and on a new run', async () => {
    const store = await h.open();
    const token = '0b8e2f3c-5a71-4c2d-9e6f-1d2c3b4a5f60';
    const { job: row } = await store.jobs.create(job('a', token));
    expect(row.tokenDigest).toBe(tokenDigest(token));
    expect(row).not.toHaveProperty('token');
    expect(tokenMatches(token, row.tokenDigest)).toBe(true);
    const rerun = '7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a';
    expect(await store.jobs.replace(job('a', rerun))).toBe(true);
    expect((await store.jobs.get('a'))!.tokenDigest).toBe(tokenDigest(rerun));
    await store.shardLedgers.create('a', tokenDigest(rerun));
    const everything = await tokenTables(store);
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(rerun);
  });

  it('hashes the plaintext tokens of a store from before, keeping each run its ledger and history', async () => {
    const url = await h.freshUrl();
    const { dialect, kind } = dialectForUrl(url);
    const old = new Kysely<any>({ dialect });
    const migrator = new Migrator({ db: old, provider: migrationProvider(kind) });
    const names = (await migrator.getMigrations()).map((m) => m.name);
    const before = names[names.indexOf(TOKEN_MIGRATION) - 1]!;
    const { error } = await migrator.migrateTo(before);
    expect(error).toBeUndefined();
    const plain = { running: 'f3e2d1c0-b9a8-4765-8432-10fedcba9876', done: 'a1b2c3d4-e5f6-4789-8abc-def012345678' };
    for (const [id, token] of Object.entries(plain)) {
      await old.insertInto('jobs').values({
        id, workflow_id: `job-${id}`, user: 'ada', group: 'ml', backend: 'local', spec: '{}', phase: 'RUNNING', token, created_at: 1, updated_at: 1,
      }).execute();
      await old.insertInto('shard_ledgers').values({ job_id: id, token, round: 2, resume_step: 40, epochs_done: 1, created_at: 1 }).execute();
      await old.insertInto('job_summaries').values({
        job_id: `${id}@${token.slice(0, 8)}`, name: id, user: 'ada', group: 'ml', cluster: 'local', entrypoint: 'python3 train.py',
        min_nodes: 1, max_nodes: 1, initial_nodes: 1, memory_bytes: 1024, cpu: 1, phase: 'RUNNING', created_at: 1,
      }).execute();
    }
    await old.destroy();

    const store = await h.open({ url });
    for (const [id, token] of Object.entries(plain)) {
      const row = (await store.jobs.get(id))!;
      expect(row.tokenDigest).toBe(tokenDigest(token));
      expect(tokenMatches(token, row.tokenDigest)).toBe(true);
      // Same run: the ledger still matches the job, so its round and resume step survive.
      expect(await store.shardLedgers.get(id)).toMatchObject({ tokenDigest: row.tokenDigest, round: 2, resumeStep: 40 });
      // The run's history moved to the key the activities now derive from the digest.
      expect(historyKey(id, row.tokenDigest)).toBe(`${id}@${digestHex(row.tokenDigest).slice(0, 8)}`);
      expect(await store.jobHistory.get(historyKey(id, row.tokenDigest))).toMatchObject({ name: id, phase: 'RUNNING' });
      expect(await store.jobHistory.get(`${id}@${token.slice(0, 8)}`)).toBeUndefined();
    }
    const everything = await tokenTables(store);
    for (const token of Object.values(plain)) {
      expect(everything).not.toContain(token);
      expect(everything).not.toContain(token.slice(0, 8));
    }
  });
});

