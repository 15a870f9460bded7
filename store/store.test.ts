import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, StoreUrlError, type NewJob } from './index.ts';
import { describeEachStore, runInProcesses, testJobSpec } from './testing.ts';

const TABLES = [
  'brain_config_entries',
  'brain_config_snapshots',
  'brain_configs',
  'checkpoint_commits',
  'checkpoint_deletions',
  'checkpoints',
  'job_failures',
  'job_summaries',
  'jobs',
  'metrics',
  'node_checks',
  'node_events',
  'nodes',
  'rendezvous_members',
  'rendezvous_rounds',
  'shard_ledgers',
  'shards',
];

function job(id: string): NewJob {
  return { id, workflowId: `job-${id}`, user: 'ada', group: 'ml', backend: 'local', spec: testJobSpec(2), phase: 'Pending', token: `t-${id}` };
}

describeEachStore('openStore', (h) => {
  it('creates every table on an empty database and logs the migration', async () => {
    const lines: string[] = [];
    const store = await h.open({ log: (m) => lines.push(m) });
    // One line per migration, in order, starting with the initial schema.
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines[0]).toMatch(/migration 2026_11_25_0001_initial applied/);
    expect(lines.every((l) => /migration \S+ applied/.test(l))).toBe(true);
    const tables = (await store.db.introspection.getTables()).map((t) => t.name).sort();
    expect(tables).toEqual(TABLES);
    await expect(store.ping()).resolves.toBeUndefined();
  });

  it('does nothing when opened again on a migrated database, and keeps the data', async () => {
    const url = await h.freshUrl();
    const first = await h.open({ url });
    await first.jobs.create(job('keep'));
    await first.close();
    const lines: string[] = [];
    const second = await h.open({ url, log: (m) => lines.push(m) });
    expect(lines).toEqual([]);
    expect((await second.jobs.get('keep'))?.workflowId).toBe('job-keep');
  });

  it('lets several processes open a new database at once; exactly one migrates it', async () => {
    const url = await h.freshUrl();
    const script = `await store.jobs.create({ ...${JSON.stringify(job(''))}, id: arg });`;
    const logs = await runInProcesses(url, script, ['p0', 'p1', 'p2']);
    expect(logs.join('').match(/migration 2026_11_25_0001_initial applied/g)).toHaveLength(1);
    const store = await h.open({ url });
    expect((await store.jobs.list()).map((j) => j.id).sort()).toEqual(['p0', 'p1', 'p2']);
  });

  it('returns ids and timestamps as JS numbers', async () => {
    const store = await h.open({ now: () => 1_764_000_000_123 });
    await store.jobs.create(job('n'));
    const event = await store.nodeEvents.append({ jobId: 'n', kind: 'node_stopped', data: {} });
    const [listed] = await store.nodeEvents.listAfter('n', 0, 10);
    expect(typeof event.id).toBe('number');
    expect(listed).toEqual(event);
    expect((await store.jobs.get('n'))?.createdAt).toBe(1_764_000_000_123);
  });

  it('commits a transaction across repositories', async () => {
    const store = await h.open();
    await store.transaction(async (tx) => {
      await tx.jobs.create(job('tx'));
      await tx.nodes.upsertLaunch({ jobId: 'tx', nodeId: 0, incarnation: 0, backend: 'local', status: 'launching' });
      await tx.nodeEvents.append({ jobId: 'tx', nodeId: 0, incarnation: 0, kind: 'node_launched', data: { pid: 1, logPath: null } });
    });
    expect(await store.jobs.get('tx')).toBeDefined();
    expect(await store.nodes.listByJob('tx')).toHaveLength(1);
    expect(await store.nodeEvents.latestId('tx')).toBeGreaterThan(0);
  });

  it('leaves nothing behind when a transaction throws', async () => {
    const store = await h.open();
    const boom = store.transaction(async (tx) => {
      await tx.jobs.create(job('rolled'));
      await tx.nodes.upsertLaunch({ jobId: 'rolled', nodeId: 0, incarnation: 0, backend: 'local', status: 'launching' });
      await tx.nodeEvents.append({ jobId: 'rolled', kind: 'node_launched', data: { pid: 1, logPath: null } });
      await tx.shards.createEpoch('rolled', 0, [{ startIndex: 0, endIndex: 10 }]);
      await tx.shards.leaseNext('rolled', 'n0', 1, 0, 1000);
      await tx.metrics.record([{ jobId: 'rolled', name: 'loss', value: 1 }]);
      await tx.brainConfigs.publishSnapshot('src', 1, [{ name: 'c', include: {}, exclude: {}, configure: {}, priority: 1 }]);
      throw new Error('boom');
    });
    await expect(boom).rejects.toThrow('boom');
    expect(await store.jobs.get('rolled')).toBeUndefined();
    expect(await store.nodes.listByJob('rolled')).toEqual([]);
    expect(await store.nodeEvents.latestId('rolled')).toBe(0);
    expect((await store.shards.progress('rolled')).total).toBe(0);
    expect(await store.metrics.list('rolled', 'loss')).toEqual([]);
    expect(await store.brainConfigs.latestSnapshot('src')).toBeUndefined();
  });

  it('lets a repository call join a transaction passed explicitly', async () => {
    const store = await h.open();
    await expect(
      store.db.transaction().execute(async (trx) => {
        await store.jobs.create(job('explicit'), trx);
        expect(await store.jobs.get('explicit', trx)).toBeDefined();
        throw new Error('undo');
      }),
    ).rejects.toThrow('undo');
    expect(await store.jobs.get('explicit')).toBeUndefined();
  });

  it('stores text exactly, with case and non-ASCII characters', async () => {
    const store = await h.open();
    const spec = testJobSpec();
    spec.spec.entrypoint.args = ['--note', 'naïve ✓ 日本'];
    await store.jobs.create({ ...job('Case'), spec });
    await store.jobs.create(job('case'));
    expect((await store.jobs.get('Case'))?.spec.spec.entrypoint.args).toEqual(['--note', 'naïve ✓ 日本']);
    expect((await store.jobs.list()).map((j) => j.id).sort()).toEqual(['Case', 'case']);
  });

  it('reads the schema through plain SQL with snake_case column names', async () => {
    const store = await h.open();
    await store.jobs.create(job('raw'));
    const { rows } = await sql<{ workflow_id: string }>`select workflow_id from jobs`.execute(store.db.withoutPlugins());
    expect(rows).toEqual([{ workflow_id: 'job-raw' }]);
  });
});

describe('openStore on SQLite', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
  });

  it('creates the parent folder and turns on WAL', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rover-store-'));
    dirs.push(dir);
    const file = path.join(dir, 'a', 'b', 'rover.db');
    const store = await openStore(`sqlite:${file}`);
    await store.close();
    const db = new BetterSqlite3(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('says which file it could not open', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rover-store-'));
    dirs.push(dir);
    await fs.writeFile(path.join(dir, 'file'), '');
    await expect(openStore(`sqlite:${path.join(dir, 'file', 'rover.db')}`)).rejects.toThrow(
      `cannot open SQLite store ${path.join(dir, 'file', 'rover.db')}`,
    );
  });

  it('opens an in-memory database', async () => {
    const store = await openStore('sqlite::memory:');
    await store.jobs.create(job('mem'));
    expect(await store.jobs.get('mem')).toBeDefined();
    await store.close();
  });
});

describe('store URLs', () => {
  it('rejects an unknown scheme and names the expected format', async () => {
    await expect(openStore('postgres://u:secret@h/db')).rejects.toThrow(StoreUrlError);
    await expect(openStore('postgres://u:secret@h/db')).rejects.toThrow(
      /unsupported store URL "postgres:\/\/u:\*\*\*@h\/db"; expected sqlite:<path>.*mysql:\/\/user:pass@host:port\/db/,
    );
  });

  it('rejects a MySQL URL without a database name', async () => {
    await expect(openStore('mysql://u:p@127.0.0.1:3306/')).rejects.toThrow(/needs a host and a database name/);
  });

  it('rejects sqlite: without a path', async () => {
    await expect(openStore('sqlite:')).rejects.toThrow(/has no file path/);
  });
});
