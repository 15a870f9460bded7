// The trainer endpoints against a real store on both dialects: leasing, exactly-once done,
// rewinds to the committed checkpoint on a new round, the commit protocol, poison shards. The
// API only records which checkpoint files a commit dooms; `sweep` is an agent's deletion pass
// (agent/checkpointDeletion.ts) over the API's deletion endpoints, which deletes them.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { apiTestConfig } from './testConfig.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { CheckpointDeleter } from '../agent/checkpointDeletion.ts';
import type { Store } from '../store/index.ts';
import { buildApi } from './server.ts';

const sha = (c: string) => c.repeat(64);

async function setup(store: Store, dataset: Record<string, unknown>, opts: { nodes?: number; keep?: number; dir?: string } = {}) {
  const nodes = opts.nodes ?? 2;
  const parsed = parseJobSpec({
    metadata: { name: 'ds', user: 'u' },
    spec: { nodes: { min: nodes }, entrypoint: { command: 'true' }, dataset, checkpoint: { dir: opts.dir ?? '/nonexistent/rover-ckpt', keep: opts.keep ?? 3 } },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const spec = parsed.spec;
  await store.jobs.create({ id: 'ds', workflowId: 'job-ds', user: 'u', group: '', backend: 'local', spec, phase: 'RUNNING', token: 't' });
  let now = 1_000_000;
  const app = await buildApi({ config: apiTestConfig({}), store, logger: createLogger('test', 'silent'), now: () => now });
  await app.ready();
  const call = async (method: 'GET' | 'POST', url: string, body?: unknown) => {
    const res = await app.inject({ method, url: `/v1/jobs/ds/${url}`, payload: body as object, headers: { authorization: 'Bearer t' } });
    if (process.env.DEBUG_LEDGER) console.log(method, url, res.statusCode, res.body);
    return { status: res.statusCode, body: res.json() };
  };
  /** Opens and closes round `round` with `n` nodes. */
  const round = async (r: number, n = nodes) => {
    await store.rendezvous.openRound({ jobId: 'ds', round: r, minNodes: 1, maxNodes: n });
    for (let i = 0; i < n; i++) await store.rendezvous.join({ jobId: 'ds', round: r, nodeId: i, incarnation: 0, host: 'h' });
    await store.rendezvous.closeRound({ jobId: 'ds', round: r, ranks: Array.from({ length: n }, (_, i) => ({ nodeId: i, rank: i })), masterAddr: 'h', masterPort: 1 });
  };
  const t = (rank: number, r = 1) => ({ node: rank, incarnation: 0, rank, round: r });
  const events = async (kind: string) => (await store.nodeEvents.listAfter('ds', 0, 1000)).filter((e) => e.kind === kind).map((e) => e.data);
  // An agent of node 0 that sees the checkpoint folder: claims the doomed files, deletes, acknowledges.
  const deleter = new CheckpointDeleter({
    api: {
      claimDeletions: async (req) => (await call('POST', 'checkpoints/deletions/claim', req)).body,
      liveCheckpoints: async (ref, after) =>
        (await call('GET', `checkpoints/live?node=${ref.node}&incarnation=${ref.incarnation}${after ? `&afterStep=${after.step}&afterRank=${after.rank}` : ''}`)).body,
      deletionsDone: async (req) => (await call('POST', 'checkpoints/deletions/done', req)).body.acknowledged,
    },
    ref: { node: 0, incarnation: 0 },
    checkpointDir: opts.dir ?? '/nonexistent/rover-ckpt',
    intervalMs: 60_000,
    jobSpacingMs: 1000,
    log: createLogger('test', 'silent'),
  });
  return { app, call, round, t, events, advance: (ms: number) => (now += ms), sweep: () => deleter.pass() };
}

describeEachStore('trainer API', (h) => {
  it('leases in batches, counts each shard done once, and finishes', async () => {
    const store = await h.open();
    const { app, call, round, t, events } = await setup(store, { size: 100, shardSize: 10, epochs: 2 });
    await round(1);
    const a = await call('POST', 'shards/lease', { ...t(0), count: 3 });
    expect(a.status).toBe(200);
    expect(a.body.shards.map((s: { shardIndex: number }) => s.shardIndex)).toEqual([0, 1, 2]);
    expect(a.body).toMatchObject({ finished: false, resumeStep: 0 });
    const keys = a.body.shards.map((s: { epoch: number; shardIndex: number }) => ({ epoch: s.epoch, shardIndex: s.shardIndex }));
    expect((await call('POST', 'shards/done', { ...t(0), step: 1, shards: keys })).body).toEqual({ counted: 3, ignored: [] });
    expect((await call('POST', 'shards/done', { ...t(0), step: 1, shards: keys })).body.counted).toBe(0);
    // Rank 1 cannot report rank 0's lease, and a giveback returns it to the queue.
    const b = await call('POST', 'shards/lease', { ...t(1), count: 1 });
    const bKey = { epoch: 0, shardIndex: b.body.shards[0].shardIndex };
    expect((await call('POST', 'shards/done', { ...t(0), step: 1, shards: [bKey] })).body.counted).toBe(0);
    expect((await call('POST', 'shards/giveback', { ...t(1), shards: [bKey] })).body).toEqual({ returned: 1 });
    for (;;) {
      const l = await call('POST', 'shards/lease', { ...t(1), count: 4 });
      if (l.body.shards.length === 0) {
        expect(l.body.finished).toBe(true);
        break;
      }
      await call('POST', 'shards/done', { ...t(1), step: 2, shards: l.body.shards.map((s: { epoch: number; shardIndex: number }) => ({ epoch: s.epoch, shardIndex: s.shardIndex })) });
    }
    expect((await call('GET', 'shards')).body).toMatchObject({ total: 20, done: 20, inFlight: 0 });
    expect(await events('epoch_done')).toEqual([{ epoch: 0 }, { epoch: 1 }]);
    const bad = await call('POST', 'shards/lease', { ...t(0), count: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toContain('body.count');
    await app.close();
  });

  it('commits a checkpoint when every rank reported, and a new round replays exactly the data after it', async () => {
    const store = await h.open();
    const dir = mkdtempSync(path.join(tmpdir(), 'rover-ckpt-'));
    const file = (step: number, rank: number) => {
      const p = path.join(dir, `s${step}-r${rank}`);
      writeFileSync(p, 'x');
      return p;
    };
    const { app, call, round, t, events, sweep } = await setup(store, { size: 40, shardSize: 10 }, { keep: 1, dir });
    await round(1);
    const doneAt = async (rank: number, step: number) => {
      const l = await call('POST', 'shards/lease', { ...t(rank), count: 1 });
      await call('POST', 'shards/done', { ...t(rank), step, shards: [{ epoch: 0, shardIndex: l.body.shards[0].shardIndex }] });
    };
    const report = (rank: number, step: number) =>
      call('POST', 'checkpoints', { ...t(rank), step, path: file(step, rank), bytes: 1, checksum: sha('a') });
    await doneAt(0, 1);
    expect((await report(0, 1)).body).toEqual({ committed: false, reported: 1, worldSize: 2 });
    expect((await call('GET', 'checkpoints/latest')).body).toEqual({ step: 0, ranks: [] });
    expect((await report(1, 1)).body).toEqual({ committed: true, reported: 2, worldSize: 2 });
    await doneAt(1, 2);
    await report(0, 2);
    await report(1, 2); // commits step 2; keep 1 dooms step 1 and its files
    expect(existsSync(path.join(dir, 's1-r0'))).toBe(true); // the API deletes nothing itself
    expect(await sweep()).toBe(2);
    expect(existsSync(path.join(dir, 's1-r0'))).toBe(false);
    expect(existsSync(path.join(dir, 's2-r0'))).toBe(true);
    await doneAt(0, 3);
    await report(0, 3); // partial: rank 1 never reports step 3
    // A trainer may name any path; one outside the checkpoint folder is refused, not recorded.
    const outside = path.join(mkdtempSync(path.join(tmpdir(), 'rover-outside-')), 'keep-me');
    writeFileSync(outside, 'x');
    const refused = await call('POST', 'checkpoints', { ...t(1), step: 5, path: outside, bytes: 1, checksum: sha('a') });
    expect(refused.status).toBe(400);
    expect(refused.body.message).toContain('is outside the job\'s checkpoint folder');
    await call('POST', 'shards/lease', { ...t(1), count: 1 }); // in flight when the round ends
    expect((await call('GET', 'shards')).body).toMatchObject({ done: 3, inFlight: 1 });
    expect(await events('checkpoint_committed')).toEqual([
      { step: 1, worldSize: 2, round: 1, doneShards: 1 },
      { step: 2, worldSize: 2, round: 1, doneShards: 2 },
    ]);

    await round(2);
    const latest = await call('GET', 'checkpoints/latest?round=2&node=0&incarnation=0&rank=0');
    expect(latest.body.step).toBe(2);
    expect(latest.body.ranks.map((r: { path: string }) => path.basename(r.path))).toEqual(['s2-r0', 's2-r1']);
    // Each rank says where it found the committed state; the job's events tell shm from storage.
    expect((await call('POST', 'checkpoints/restored', { ...t(0, 2), step: 2, source: 'shm', seconds: 0.25 })).status).toBe(200);
    expect((await call('POST', 'checkpoints/restored', { ...t(1, 2), step: 2, source: 'storage' })).status).toBe(200);
    const badSource = await call('POST', 'checkpoints/restored', { ...t(1, 2), step: 2, source: 'tape' });
    expect(badSource.status).toBe(400);
    expect(badSource.body.message).toContain('body.source');
    expect(await events('checkpoint_restored')).toEqual([
      { step: 2, source: 'shm', round: 2, seconds: 0.25 },
      { step: 2, source: 'storage', round: 2 },
    ]);
    expect(await sweep()).toBe(1);
    expect(existsSync(path.join(dir, 's3-r0'))).toBe(false); // the partial step is gone
    expect(existsSync(outside)).toBe(true); // only files inside spec.checkpoint.dir are removed
    expect((await call('GET', 'shards')).body).toMatchObject({ done: 2, inFlight: 0, queued: 2 });
    const staleLease = await call('POST', 'shards/lease', { ...t(0, 1), count: 1 });
    expect(staleLease.status).toBe(409);
    expect(staleLease.body.error).toBe('stale_round');
    expect((await call('POST', 'shards/lease', { ...t(0, 2), count: 5 })).body).toMatchObject({ resumeStep: 2 });
    expect((await call('POST', 'shards/lease', { ...t(0, 3), count: 5 })).body.error).toBe('unknown_round');
    await app.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(path.dirname(outside), { recursive: true, force: true });
  });

  it('refuses checkpoint paths escaping the folder by ".." or a symlink, and deletes nothing outside it', async () => {
    const store = await h.open();
    const dir = mkdtempSync(path.join(tmpdir(), 'rover-ckpt-'));
    const outside = mkdtempSync(path.join(tmpdir(), 'rover-outside-'));
    const canary = path.join(outside, 'canary');
    writeFileSync(canary, 'keep me');
    symlinkSync(outside, path.join(dir, 'link'));
    const { app, call, round, t, sweep } = await setup(store, { size: 40, shardSize: 10 }, { nodes: 1, keep: 1, dir });
    await round(1);
    const report = (step: number, file: string) => call('POST', 'checkpoints', { ...t(0), step, path: file, bytes: 1, checksum: sha('a') });
    for (const [file, why] of [
      [path.join(dir, 'link', 'canary'), 'through a symlink'],
      [path.join(dir, 'link', 'new', 'canary'), 'through a symlink'],
      [`${dir}/../${path.basename(outside)}/canary`, 'must not contain ".."'],
      [canary, 'is outside'],
      ['canary', 'is outside'],
      [dir, 'is outside'],
    ]) {
      const res = await report(1, file!);
      expect(res.status, file).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_path' });
      expect(res.body.message).toContain(why);
    }
    // A folder that passed at report time and became a symlink to the outside before the
    // commit that drops it: the deletion follows the real path and spares the canary.
    mkdirSync(path.join(dir, 'swap'));
    writeFileSync(path.join(dir, 'swap', 'canary'), 'x');
    expect((await report(1, path.join(dir, 'swap', 'canary'))).body.committed).toBe(true);
    rmSync(path.join(dir, 'swap'), { recursive: true });
    symlinkSync(outside, path.join(dir, 'swap'));
    writeFileSync(path.join(dir, 's2'), 'x');
    expect((await report(2, path.join(dir, 's2'))).body.committed).toBe(true); // keep 1: step 1 goes
    await sweep();
    expect(readFileSync(canary, 'utf8')).toBe('keep me');
    // Inside the folder, deletion still works: step 2's file goes when step 3 commits.
    writeFileSync(path.join(dir, 's3'), 'x');
    expect((await report(3, path.join(dir, 's3'))).body.committed).toBe(true);
    expect(await sweep()).toBe(1);
    expect(existsSync(path.join(dir, 's2'))).toBe(false);
    await app.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('drops a step saved as a folder of its own (torch.distributed.checkpoint) whole, and spares a folder kept steps share', async () => {
    const store = await h.open();
    const dir = mkdtempSync(path.join(tmpdir(), 'rover-ckpt-'));
    const { app, call, round, t, sweep } = await setup(store, { size: 40, shardSize: 10 }, { nodes: 2, keep: 1, dir });
    await round(1);
    // DCP: <dir>/dcp-<step>/ holds each rank's __<rank>_0.distcp and a .metadata no rank reports;
    // beside it, a trainer that keeps every step's files in one folder.
    const save = async (step: number) => {
      const folder = path.join(dir, `dcp-${step}`);
      mkdirSync(folder);
      writeFileSync(path.join(folder, '.metadata'), 'm');
      mkdirSync(path.join(dir, 'shared'), { recursive: true });
      for (const rank of [0, 1]) {
        const file = rank === 0 ? path.join(folder, `__${rank}_0.distcp`) : path.join(dir, 'shared', `s${step}-r1`);
        writeFileSync(file, 'x');
        await call('POST', 'checkpoints', { ...t(rank), step, path: file, bytes: 1, checksum: sha('a') });
      }
    };
    await save(1);
    await save(2); // keep 1: step 1 goes
    await sweep();
    expect(existsSync(path.join(dir, 'dcp-1'))).toBe(false);
    expect(existsSync(path.join(dir, 'dcp-2', '.metadata'))).toBe(true);
    expect(existsSync(path.join(dir, 'shared', 's1-r1'))).toBe(false);
    expect(existsSync(path.join(dir, 'shared', 's2-r1'))).toBe(true);
    expect(existsSync(dir)).toBe(true);
    // Step 3 in nested/, step 4 in nested/deep/ beside a file no step reported: dropping step 3
    // leaves nested/ (a kept step lies below it, and it holds a folder), and all of step 4.
    mkdirSync(path.join(dir, 'nested', 'deep'), { recursive: true });
    writeFileSync(path.join(dir, 'nested', 'deep', 'other'), 'keep me');
    for (const [step, folder] of [[3, 'nested'], [4, 'nested/deep']] as const) {
      for (const rank of [0, 1]) {
        const file = path.join(dir, folder, `s${step}-r${rank}`);
        writeFileSync(file, 'x');
        await call('POST', 'checkpoints', { ...t(rank), step, path: file, bytes: 1, checksum: sha('a') });
      }
    }
    await sweep();
    expect(existsSync(path.join(dir, 'nested', 's3-r0'))).toBe(false);
    expect(['s4-r0', 's4-r1', 'other'].map((f) => existsSync(path.join(dir, 'nested', 'deep', f)))).toEqual([true, true, true]);
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never deletes a kept step named through a symlink, nor a file no step reported', async () => {
    const store = await h.open();
    const dir = mkdtempSync(path.join(tmpdir(), 'rover-ckpt-'));
    const { app, call, round, t, sweep } = await setup(store, { size: 40, shardSize: 10 }, { nodes: 2, keep: 1, dir });
    await round(1);
    // b/ is also reachable as alias/ (a "latest" link); u/ holds step 1 beside someone's notes.
    mkdirSync(path.join(dir, 'b'));
    symlinkSync(path.join(dir, 'b'), path.join(dir, 'alias'));
    mkdirSync(path.join(dir, 'u'));
    writeFileSync(path.join(dir, 'u', 'notes.txt'), 'keep me');
    const report = async (step: number, files: string[]) => {
      for (const [rank, file] of files.entries()) {
        writeFileSync(path.join(dir, file), `step ${step}`);
        await call('POST', 'checkpoints', { ...t(rank), step, path: path.join(dir, file), bytes: 1, checksum: sha('a') });
      }
    };
    await report(1, ['u/s1-r0', 'b/f-r1']);
    await report(2, ['b/s2-r0', 'alias/f-r1']); // keep 1: step 1 goes; b/f-r1 is step 2's file too
    await sweep();
    expect(readFileSync(path.join(dir, 'b', 'f-r1'), 'utf8')).toBe('step 2');
    await report(3, ['alias/s3-r0', 'alias/s3-r1']); // step 2 goes; step 3 lives in b/, named through alias/
    await sweep();
    expect(existsSync(path.join(dir, 'u', 's1-r0'))).toBe(false);
    expect(readFileSync(path.join(dir, 'u', 'notes.txt'), 'utf8')).toBe('keep me');
    expect(['s2-r0', 'f-r1', 's3-r0', 's3-r1'].map((f) => existsSync(path.join(dir, 'b', f)))).toEqual([false, false, true, true]);
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('poisons a shard leased too often and fails or skips it per spec', async () => {
    for (const onPoison of ['fail', 'skip'] as const) {
      const store = await h.open();
      const { app, call, round, t, events, advance } = await setup(store, { size: 10, shardSize: 10, maxRetries: 1, leaseTimeout: '1s', onPoison });
      await round(1);
      expect((await call('POST', 'shards/lease', t(0))).body.shards).toHaveLength(1);
      advance(1000);
      expect((await call('POST', 'shards/lease', t(1))).body.shards[0].attempts).toBe(2);
      advance(1000);
      expect((await call('POST', 'shards/lease', t(0))).body).toMatchObject({ shards: [], finished: true });
      expect(await events('shard_poisoned')).toEqual([{ epoch: 0, shardIndex: 0, attempts: 2, policy: onPoison }]);
      expect((await call('GET', 'shards')).body).toMatchObject(onPoison === 'fail' ? { poison: 1 } : { skipped: 1 });
      await app.close();
    }
  });
});
