import { expect, it } from 'vitest';
import type { ShardKey } from './index.ts';
import { describeEachStore, runInProcesses } from './testing.ts';

const ranges = (n: number, size = 100) => Array.from({ length: n }, (_, i) => ({ startIndex: i * size, endIndex: (i + 1) * size }));
const keyOf = (s: ShardKey) => `${s.epoch}/${s.shardIndex}`;

describeEachStore('shards', (h) => {
  it('creates an epoch once and leases shards in order', async () => {
    const store = await h.open();
    expect(await store.shards.createEpoch('j', 0, ranges(3))).toBe(true);
    expect(await store.shards.createEpoch('j', 0, ranges(5))).toBe(false);
    const leased = await store.shards.leaseNext('j', 'node-0', 2, 1000, 500);
    expect(leased).toEqual([
      { jobId: 'j', epoch: 0, shardIndex: 0, startIndex: 0, endIndex: 100, status: 'leased', leaseOwner: 'node-0', leaseExpiresAt: 1500, attempts: 1, doneAt: null, doneStep: null },
      { jobId: 'j', epoch: 0, shardIndex: 1, startIndex: 100, endIndex: 200, status: 'leased', leaseOwner: 'node-0', leaseExpiresAt: 1500, attempts: 1, doneAt: null, doneStep: null },
    ]);
    expect((await store.shards.leaseNext('j', 'node-1', 5, 1000, 500)).map(keyOf)).toEqual(['0/2']);
    expect(await store.shards.leaseNext('j', 'node-1', 5, 1000, 500)).toEqual([]);
    expect(await store.shards.leaseNext('other', 'node-1', 5, 1000, 500)).toEqual([]);
  });

  it('creates an epoch of many shards in several INSERTs', async () => {
    const store = await h.open();
    expect(await store.shards.createEpoch('j', 0, ranges(1234, 10))).toBe(true);
    expect((await store.shards.progress('j')).queued).toBe(1234);
    expect(await store.shards.get({ jobId: 'j', epoch: 0, shardIndex: 1233 })).toMatchObject({ startIndex: 12330, endIndex: 12340 });
  });

  it('hands disjoint shards to concurrent callers', async () => {
    const store = await h.open();
    await store.shards.createEpoch('j', 0, ranges(30));
    const batches = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.shards.leaseNext('j', `node-${i}`, 3, 1000, 60_000)),
    );
    const all = batches.flat();
    expect(all).toHaveLength(24);
    expect(new Set(all.map(keyOf)).size).toBe(24);
    batches.forEach((batch, i) => expect(batch.every((s) => s.leaseOwner === `node-${i}`)).toBe(true));
    expect(await store.shards.progress('j')).toMatchObject({ total: 30, inFlight: 24, queued: 6 });
  });

  it('hands disjoint shards to callers in separate processes', async () => {
    const url = await h.freshUrl();
    const store = await h.open({ url });
    await store.shards.createEpoch('j', 0, ranges(40));
    const script = `
      for (let i = 0; i < 5; i++) {
        for (const s of await store.shards.leaseNext('j', arg, 2, 1000, 60_000)) console.log('leased', s.epoch + '/' + s.shardIndex);
      }`;
    const outputs = await runInProcesses(url, script, ['p0', 'p1', 'p2']);
    const leased = outputs.flatMap((o) => [...o.matchAll(/^leased (\S+)$/gm)].map((m) => m[1]));
    expect(leased).toHaveLength(30);
    expect(new Set(leased).size).toBe(30);
    expect(await store.shards.progress('j')).toMatchObject({ inFlight: 30, queued: 10 });
  });

  it('re-leases a shard whose lease expired, counting the attempt', async () => {
    const store = await h.open();
    await store.shards.createEpoch('j', 0, ranges(1));
    await store.shards.leaseNext('j', 'slow', 1, 1000, 100);
    expect(await store.shards.leaseNext('j', 'other', 1, 1099, 100)).toEqual([]);
    const [again] = await store.shards.leaseNext('j', 'other', 1, 1100, 100);
    expect(again).toMatchObject({ leaseOwner: 'other', attempts: 2, leaseExpiresAt: 1200 });
  });

  it('extends the leases an owner holds', async () => {
    const store = await h.open();
    await store.shards.createEpoch('j', 0, ranges(3));
    await store.shards.leaseNext('j', 'a', 2, 1000, 100);
    await store.shards.leaseNext('j', 'b', 1, 1000, 100);
    expect(await store.shards.extendLeases('j', 'a', 5000)).toBe(2);
    expect(await store.shards.leaseNext('j', 'c', 3, 2000, 100)).toHaveLength(1);
  });

  it('counts a shard done only the first time it is reported', async () => {
    const store = await h.open({ now: () => 4242 });
    await store.shards.createEpoch('j', 0, ranges(2));
    const [shard] = await store.shards.leaseNext('j', 'a', 1, 1000, 100);
    const key = { jobId: 'j', epoch: 0, shardIndex: shard!.shardIndex };
    expect(await store.shards.markDone(key)).toBe(true);
    expect(await store.shards.markDone(key)).toBe(false);
    expect(await store.shards.get(key)).toMatchObject({ status: 'done', doneAt: 4242, leaseExpiresAt: null });
    expect(await store.shards.markDone({ jobId: 'j', epoch: 0, shardIndex: 99 })).toBe(false);
    const racing = await Promise.all(Array.from({ length: 5 }, () => store.shards.markDone({ ...key, shardIndex: 1 })));
    expect(racing.filter(Boolean)).toHaveLength(1);
    expect(await store.shards.progress('j')).toMatchObject({ total: 2, done: 2, inFlight: 0 });
    // A done shard is never leased again, even long after.
    expect(await store.shards.leaseNext('j', 'b', 5, 1e12, 100)).toEqual([]);
  });

  it('returns a dead owner’s leases to the queue', async () => {
    const store = await h.open();
    await store.shards.createEpoch('j', 0, ranges(4));
    await store.shards.leaseNext('j', 'dead', 2, 1000, 60_000);
    const [kept] = await store.shards.leaseNext('j', 'alive', 1, 1000, 60_000);
    await store.shards.markDone({ jobId: 'j', epoch: 0, shardIndex: 0 });
    expect(await store.shards.release('j', 'dead')).toBe(1);
    expect(await store.shards.release('j', 'dead')).toBe(0);
    const next = await store.shards.leaseNext('j', 'alive', 5, 1000, 60_000);
    expect(next.map(keyOf)).toEqual(['0/1', '0/3']);
    expect(await store.shards.get({ jobId: 'j', epoch: 0, shardIndex: kept!.shardIndex })).toMatchObject({ leaseOwner: 'alive' });
  });

  it('reports progress per epoch and never leases poisoned shards', async () => {
    const store = await h.open();
    await store.shards.createEpoch('j', 0, ranges(3));
    await store.shards.createEpoch('j', 1, ranges(2));
    expect(await store.shards.markPoison({ jobId: 'j', epoch: 0, shardIndex: 0 })).toBe(true);
    await store.shards.markDone({ jobId: 'j', epoch: 0, shardIndex: 1 });
    expect(await store.shards.markPoison({ jobId: 'j', epoch: 0, shardIndex: 1 })).toBe(false);
    expect((await store.shards.leaseNext('j', 'a', 2, 0, 10)).map(keyOf)).toEqual(['0/2', '1/0']);
    expect(await store.shards.progress('j')).toEqual({
      total: 5, queued: 1, inFlight: 2, done: 1, poison: 1, skipped: 0,
      epochs: [
        { epoch: 0, total: 3, queued: 0, inFlight: 1, done: 1, poison: 1, skipped: 0 },
        { epoch: 1, total: 2, queued: 1, inFlight: 1, done: 0, poison: 0, skipped: 0 },
      ],
    });
    expect(await store.shards.progress('none')).toEqual({ total: 0, queued: 0, inFlight: 0, done: 0, poison: 0, skipped: 0, epochs: [] });
  });
});

describeEachStore('rendezvous', (h) => {
  const round = { jobId: 'j', round: 0 };

  it('opens a round once, admits joins, and closes it with ranks', async () => {
    let now = 100;
    const store = await h.open({ now: () => now });
    const opened = await store.rendezvous.openRound({ ...round, minNodes: 2, maxNodes: 3 });
    expect(opened).toEqual({
      created: true,
      round: {
        ...round, status: 'open', openedAt: 100, lastJoinAt: null, closedAt: null, minNodes: 2, maxNodes: 3, masterAddr: null, masterPort: null, nodeCount: null, memberCount: 0,
        culpritNode: null, culpritIncarnation: null, culpritWeight: null, culpritAt: null, culpritExitedAt: null,
      },
    });
    expect(store.rendezvous.culprit(opened.round)).toBeNull();
    expect((await store.rendezvous.openRound({ ...round, minNodes: 9, maxNodes: 9 })).created).toBe(false);
    now = 200;
    expect(await store.rendezvous.join({ ...round, nodeId: 1, incarnation: 0, host: 'h1', freePort: 29501 })).toEqual({
      ...round, nodeId: 1, incarnation: 0, host: 'h1', freePort: 29501, joinedAt: 200, rank: null,
    });
    now = 300;
    await store.rendezvous.join({ ...round, nodeId: 0, incarnation: 0, host: 'h0' });
    expect(await store.rendezvous.getRound(round)).toMatchObject({ lastJoinAt: 300, memberCount: 2 });
    expect((await store.rendezvous.listMembers(round)).map((m) => m.freePort)).toEqual([29501, null]);
    expect((await store.rendezvous.listMembers(round)).map((m) => m.nodeId)).toEqual([1, 0]);

    now = 400;
    const close = { ...round, ranks: [{ nodeId: 0, rank: 0 }, { nodeId: 1, rank: 1 }], masterAddr: 'h0', masterPort: 29500 };
    expect(await store.rendezvous.closeRound(close)).toBe(true);
    expect(await store.rendezvous.closeRound(close)).toBe(false);
    expect(await store.rendezvous.getRound(round)).toMatchObject({ status: 'closed', closedAt: 400, masterAddr: 'h0', masterPort: 29500, nodeCount: 2 });
    expect((await store.rendezvous.listMembers(round)).map((m) => [m.nodeId, m.rank])).toEqual([[1, 1], [0, 0]]);
    // One member by node: what a poll or a heartbeat reads.
    expect(await store.rendezvous.getMembers(round, [1, 7])).toEqual([{ ...round, nodeId: 1, incarnation: 0, host: 'h1', freePort: 29501, joinedAt: 200, rank: 1 }]);
    expect(await store.rendezvous.join({ ...round, nodeId: 2, incarnation: 0, host: 'h2' })).toBeUndefined();
    expect(await store.rendezvous.join({ jobId: 'j', round: 5, nodeId: 2, incarnation: 0, host: 'h2' })).toBeUndefined();
    // The culprit of the round's failures (api/agentService.ts report) survives a read back, exit time included.
    const culprit = { node: 1, incarnation: 0, weight: 3, at: 450, exitedAt: 1_795_000_000_123 };
    await store.rendezvous.setCulprit(round, culprit);
    expect(store.rendezvous.culprit((await store.rendezvous.getRound(round))!)).toEqual(culprit);
  });

  it('replaces a member that rejoins as a new incarnation, and lets members leave', async () => {
    const store = await h.open();
    await store.rendezvous.openRound({ ...round, minNodes: 1, maxNodes: 4 });
    await store.rendezvous.join({ ...round, nodeId: 1, incarnation: 0, host: 'old' });
    await store.rendezvous.join({ ...round, nodeId: 1, incarnation: 1, host: 'new' });
    await store.rendezvous.join({ ...round, nodeId: 2, incarnation: 0, host: 'h2' });
    expect((await store.rendezvous.listMembers(round)).map((m) => [m.nodeId, m.incarnation, m.host])).toEqual([
      [1, 1, 'new'],
      [2, 0, 'h2'],
    ]);
    // A rejoin replaces the member: the round counts nodes, not joins.
    expect((await store.rendezvous.getRound(round))?.memberCount).toBe(2);
    expect(await store.rendezvous.leave(round, 2)).toBe(true);
    expect(await store.rendezvous.leave(round, 2)).toBe(false);
    expect(await store.rendezvous.listMembers(round)).toHaveLength(1);
    expect((await store.rendezvous.getRound(round))?.memberCount).toBe(1);
  });

  it('admits every concurrent joiner exactly once', async () => {
    const store = await h.open();
    await store.rendezvous.openRound({ ...round, minNodes: 1, maxNodes: 16 });
    await Promise.all(
      Array.from({ length: 12 }, (_, nodeId) => store.rendezvous.join({ ...round, nodeId, incarnation: 0, host: `h${nodeId}` })),
    );
    expect((await store.rendezvous.listMembers(round)).map((m) => m.nodeId).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 12 }, (_, i) => i),
    );
    expect((await store.rendezvous.getRound(round))?.memberCount).toBe(12);
  });

  it('fails an open round and finds the latest round', async () => {
    const store = await h.open({ now: () => 7 });
    expect(await store.rendezvous.latestRound('j')).toBeUndefined();
    await store.rendezvous.openRound({ ...round, minNodes: 2, maxNodes: 2 });
    await store.rendezvous.openRound({ jobId: 'j', round: 1, minNodes: 2, maxNodes: 2 });
    expect(await store.rendezvous.failRound(round)).toBe(true);
    expect(await store.rendezvous.failRound(round)).toBe(false);
    expect(await store.rendezvous.getRound(round)).toMatchObject({ status: 'failed', closedAt: 7 });
    expect((await store.rendezvous.latestRound('j'))?.round).toBe(1);
    expect(await store.rendezvous.getRound({ jobId: 'j', round: 9 })).toBeUndefined();
  });

  // MySQL only: SQLite has one writer, so a transaction never inserts after another committed the row.
  it.skipIf(h.dialect === 'sqlite')('opens a round that another connection committed after this transaction\'s snapshot: the existing round, not an error', async () => {
    const url = await h.freshUrl();
    const [mine, other] = [await h.open({ url }), await h.open({ url })];
    const next = { jobId: 'j', round: 2, minNodes: 1, maxNodes: 2 };
    const opened = await mine.transaction(async (tx) => {
      await tx.rendezvous.latestRound('j'); // the snapshot: round 2 does not exist yet
      await other.rendezvous.openRound(next);
      return tx.rendezvous.openRound(next);
    });
    expect(opened).toMatchObject({ created: false, round: { round: 2, status: 'open' } });
  });
});
