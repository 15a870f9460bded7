// Checkpoint files are deleted where they are (issue 17): the API records what a commit dooms and
// touches no file; an agent of the job, over HTTP with its node token, claims, deletes and
// acknowledges. Here the API's process cannot see the checkpoint folder at all (a relative
// spec.checkpoint.dir that only the agent's working directory holds), as in Kubernetes.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { nodeToken, tokenDigest } from '../common/tokens.ts';
import { buildApi } from '../api/server.ts';
import { openStore, type Store } from '../store/index.ts';
import { waitUntil } from '../test/waits.ts';
import { CheckpointDeleter } from './checkpointDeletion.ts';
import { HttpApiClient, ApiHttpError } from './apiClient.ts';

const SIGNING_KEY = 'signing-key-of-the-test-operator';
const silent = createLogger('test', 'silent');
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A Kubernetes job of `nodes` nodes, one process each, round 1 closed, keeping 1 checkpoint in the
 * relative folder `dir` (left as written: it is the containers', relative to their working directory).
 */
async function createJob(store: Store, job: string, dir: string, nodes = 2) {
  const spec = { backend: 'kubernetes', kubernetes: { image: 'python:3.12' }, nodes: { min: nodes }, entrypoint: { command: 'true' }, checkpoint: { dir, keep: 1 } };
  const parsed = parseJobSpec({ metadata: { name: job, user: 'u' }, spec });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  await store.jobs.create({ id: job, workflowId: `job-${job}`, user: 'u', group: '', backend: 'kubernetes', spec: parsed.spec, phase: 'RUNNING', token: `${job}-token` });
  await store.rendezvous.openRound({ jobId: job, round: 1, minNodes: 1, maxNodes: nodes });
  for (let n = 0; n < nodes; n++) await store.rendezvous.join({ jobId: job, round: 1, nodeId: n, incarnation: 0, host: 'h' });
  await store.rendezvous.closeRound({ jobId: job, round: 1, ranks: Array.from({ length: nodes }, (_, n) => ({ nodeId: n, rank: n })), masterAddr: 'h', masterPort: 1 });
}

/** A node's token of `job` (what its agent and trainers hold as ROVER_TOKEN). */
const tokenOf = (job: string, node: number) => nodeToken(SIGNING_KEY, tokenDigest(`${job}-token`), { node, incarnation: 0 });

async function startApi(store: Store) {
  const app = await buildApi({ config: loadConfig({ ROVER_OPERATOR_TOKEN: SIGNING_KEY }), store, logger: silent });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url };
}

async function stack() {
  const dbDir = mkdtempSync(path.join(tmpdir(), 'rover-deletion-db-'));
  const store = await openStore(`sqlite:${path.join(dbDir, 'rover.db')}`);
  // The trainers' working directory on the node; the API's own working directory has no such folder.
  const workdir = mkdtempSync(path.join(tmpdir(), 'rover-node-'));
  const dir = `ckpt-${randomBytes(4).toString('hex')}`;
  expect(existsSync(path.resolve(dir))).toBe(false);
  mkdirSync(path.join(workdir, dir));
  cleanups.push(() => rmSync(workdir, { recursive: true, force: true }), () => rmSync(dbDir, { recursive: true, force: true }), () => store.close());
  return { store, workdir, dir };
}

/** What a node's agent runs: its API client (node token) and its deleter. */
function agentOf(url: string, job: string, node: number, dir: string, workdir: string) {
  const client = new HttpApiClient({ baseUrls: [url], job, token: tokenOf(job, node) });
  const deleter = new CheckpointDeleter({ api: client, ref: { node, incarnation: 0 }, checkpointDir: dir, workdir, intervalMs: 60_000, jobSpacingMs: 1000, log: silent });
  return { client, deleter };
}

/** Each rank of `job` saves `step` in the folder (relative to the workdir) and reports it, as a trainer does. */
async function saveStep(url: string, job: string, workdir: string, dir: string, step: number, ranks = 2) {
  for (let rank = 0; rank < ranks; rank++) {
    const rel = `${dir}/s${step}-r${rank}`;
    writeFileSync(path.join(workdir, rel), `step ${step}`);
    const res = await fetch(`${url}/v1/jobs/${job}/checkpoints`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenOf(job, rank)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ node: rank, incarnation: 0, rank, round: 1, step, path: rel, bytes: 6, checksum: 'a'.repeat(64) }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
  }
}

const exists = (workdir: string, dir: string, name: string) => existsSync(path.join(workdir, dir, name));

describe('checkpoint deletion on the node side', () => {
  it('deletes what a commit doomed though the API cannot see the folder: once, by one agent, after an API restart', async () => {
    const { store, workdir, dir } = await stack();
    await createJob(store, 'ds', dir);
    let api = await startApi(store);
    await saveStep(api.url, 'ds', workdir, dir, 1);
    await saveStep(api.url, 'ds', workdir, dir, 2); // keep 1: step 1 is doomed
    expect((await store.checkpoints.listDoomed('ds')).map((d) => d.path)).toEqual([`${dir}/s1-r0`, `${dir}/s1-r1`]);
    expect(exists(workdir, dir, 's1-r0')).toBe(true); // the API deleted nothing (and could not)

    // The API restarts; what was doomed is in the store, and the next API hands it out.
    await api.app.close();
    api = await startApi(store);
    cleanups.push(() => api.app.close());
    const a = agentOf(api.url, 'ds', 0, dir, workdir);
    const b = agentOf(api.url, 'ds', 1, dir, workdir);
    // Two agents at once: each file goes to one claim.
    const removed = await Promise.all([a.deleter.pass(), b.deleter.pass()]);
    expect(removed[0]! + removed[1]!).toBe(2);
    expect([0, 1].map((r) => exists(workdir, dir, `s1-r${r}`))).toEqual([false, false]);
    expect([0, 1].map((r) => exists(workdir, dir, `s2-r${r}`))).toEqual([true, true]);
    expect(await store.checkpoints.listDoomed('ds')).toEqual([]);

    // A doomed file saved again after the commit doomed it is a new checkpoint: spared, acknowledged.
    await saveStep(api.url, 'ds', workdir, dir, 3); // dooms step 2
    const later = new Date(Date.now() + 60_000);
    utimesSync(path.join(workdir, dir, 's2-r1'), later, later);
    expect(await a.deleter.pass()).toBe(1);
    expect([exists(workdir, dir, 's2-r0'), exists(workdir, dir, 's2-r1')]).toEqual([false, true]);
    expect(await store.checkpoints.listDoomed('ds')).toEqual([]);
  });

  it('a claim that lapses goes to the next agent, and an acknowledgement under a lapsed claim forgets nothing', async () => {
    let now = 1_000_000;
    const dbDir = mkdtempSync(path.join(tmpdir(), 'rover-deletion-db-'));
    const store = await openStore(`sqlite:${path.join(dbDir, 'rover.db')}`, { now: () => now });
    cleanups.push(() => rmSync(dbDir, { recursive: true, force: true }), () => store.close());
    await store.checkpoints.doom('ds', [{ step: 1, rank: 0, path: 'ckpt/s1-r0' }]);
    const first = await store.checkpoints.claimDeletions('ds', { token: 'a'.repeat(32), limit: 10, leaseMs: 60_000 });
    expect(first).toHaveLength(1);
    expect(await store.checkpoints.claimDeletions('ds', { token: 'b'.repeat(32), limit: 10, leaseMs: 60_000 })).toEqual([]);
    now += 60_000;
    const second = await store.checkpoints.claimDeletions('ds', { token: 'b'.repeat(32), limit: 10, leaseMs: 60_000 });
    expect(second.map((d) => d.id)).toEqual(first.map((d) => d.id));
    expect(await store.checkpoints.finishDeletions('ds', 'a'.repeat(32), [first[0]!.id])).toBe(0);
    expect(await store.checkpoints.finishDeletions('other', 'b'.repeat(32), [first[0]!.id])).toBe(0);
    expect(await store.checkpoints.finishDeletions('ds', 'b'.repeat(32), [first[0]!.id])).toBe(1);
  });

  it("an agent gets only its own job's doomed paths, and deletes nothing outside its job's folder", async () => {
    const { store, workdir, dir } = await stack();
    await createJob(store, 'ds', dir);
    await createJob(store, 'other', dir);
    const api = await startApi(store);
    cleanups.push(() => api.app.close());
    await saveStep(api.url, 'ds', workdir, dir, 1);
    await saveStep(api.url, 'ds', workdir, dir, 2); // dooms ds's step 1
    const other = agentOf(api.url, 'other', 0, dir, workdir);
    // Its own job has nothing doomed; another job's URL refuses its token.
    expect((await other.client.claimDeletions({ node: 0, incarnation: 0 })).deletions).toEqual([]);
    const asOther = new HttpApiClient({ baseUrls: [api.url], job: 'ds', token: tokenOf('other', 0) });
    for (const call of [
      () => asOther.claimDeletions({ node: 0, incarnation: 0 }),
      () => asOther.liveCheckpoints({ node: 0, incarnation: 0 }),
      () => asOther.deletionsDone({ node: 0, incarnation: 0, token: 'c'.repeat(32), ids: [1, 2] }),
    ]) {
      const err = await call().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ApiHttpError);
      expect((err as ApiHttpError).status).toBe(403);
    }
    // A node token of ds cannot act as another node either.
    const impostor = new HttpApiClient({ baseUrls: [api.url], job: 'ds', token: tokenOf('ds', 1) });
    expect(await impostor.claimDeletions({ node: 0, incarnation: 0 }).then(() => 200, (e: ApiHttpError) => e.status)).toBe(403);
    // ds's claim, acknowledged under job other, forgets nothing of ds.
    const ds = agentOf(api.url, 'ds', 0, dir, workdir);
    const claim = await ds.client.claimDeletions({ node: 0, incarnation: 0 });
    expect(claim.deletions).toHaveLength(2);
    expect(await other.client.deletionsDone({ node: 0, incarnation: 0, token: claim.token, ids: claim.deletions.map((d) => d.id) })).toBe(0);
    expect(await store.checkpoints.listDoomed('ds')).toHaveLength(2);
    expect(await ds.client.deletionsDone({ node: 0, incarnation: 0, token: claim.token, ids: claim.deletions.map((d) => d.id) })).toBe(2);

    // A doomed row naming a file outside the folder (an old row, a bug) is refused by the agent itself.
    const outside = mkdtempSync(path.join(tmpdir(), 'rover-outside-'));
    cleanups.push(() => rmSync(outside, { recursive: true, force: true }));
    writeFileSync(path.join(outside, 'canary'), 'keep me');
    await store.checkpoints.doom('ds', [
      { step: 9, rank: 0, path: path.join(outside, 'canary') },
      { step: 9, rank: 1, path: `${dir}/../${path.basename(outside)}/canary` },
    ]);
    expect(await ds.deleter.pass()).toBe(0);
    expect(readFileSync(path.join(outside, 'canary'), 'utf8')).toBe('keep me');
    expect(await store.checkpoints.listDoomed('ds')).toEqual([]);
  });

  it("asks nothing before its first round, then spreads the job's asks over its nodes", async () => {
    const claims: number[] = [];
    const api = {
      claimDeletions: async () => {
        claims.push(Date.now());
        return { deletions: [], token: '', claimedUntil: 0 };
      },
      liveCheckpoints: async () => ({ reports: [] }),
      deletionsDone: async () => 0,
    };
    // Each agent of a 40-node job at 10 ms per job ask: every 200-600 ms (jittered ±50 %), not every 20 ms.
    const deleter = new CheckpointDeleter({ api, ref: { node: 0, incarnation: 0 }, checkpointDir: '/nonexistent', intervalMs: 20, jobSpacingMs: 10, log: silent });
    deleter.start();
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(claims, 'no ask before a round closed').toEqual([]);
      const since = Date.now();
      deleter.setJobNodes(40);
      await waitUntil(() => claims.length >= 2, 'two periodic asks', 10_000);
      expect(claims[1]! - claims[0]!, 'the second ask a period after the first').toBeGreaterThanOrEqual(200);
      expect(claims[0]! - since).toBeLessThan(2000);
    } finally {
      await deleter.stop();
    }
  });
});
