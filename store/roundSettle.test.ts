// settleRound: the one round policy applied to the store, by the API (an agent asks) and by the
// job workflow's join-deadline timer (no agent may be alive).
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import type { Store, TransactionScope } from './index.ts';
import { isLockConflict, type Trx } from './repository.ts';
import { settleRound } from './roundSettle.ts';
import { describeEachStore } from './testing.ts';

const rules = { unit: 1, lastCallTimeoutMs: 1000, joinTimeoutMs: 60_000 };
const key = { jobId: 'j', round: 1 };
const UNSCHEDULABLE = 'pod not scheduled (PodScheduled False): Unschedulable: 0/3 nodes are available: 3 Insufficient cpu';

describeEachStore('settleRound', (h) => {
  /** Job j: 3 nodes launched, round 1 (min 2, max 3) opened at t=1s; node 0 registered and joined; 1 and 2 unschedulable. */
  async function oneJoined(now: { t: number }) {
    const store = await h.open({ now: () => now.t });
    for (const nodeId of [0, 1, 2]) await store.nodes.upsertLaunch({ jobId: 'j', nodeId, incarnation: 0, backend: 'kubernetes', status: 'launching' });
    await store.rendezvous.openRound({ ...key, minNodes: 2, maxNodes: 3 });
    await store.nodes.update({ jobId: 'j', nodeId: 0, incarnation: 0 }, { status: 'running' });
    await store.rendezvous.join({ ...key, nodeId: 0, incarnation: 0, host: 'h0', freePort: 1 });
    await store.nodes.update({ jobId: 'j', nodeId: 1, incarnation: 0 }, { pendingReason: UNSCHEDULABLE });
    await store.nodes.update({ jobId: 'j', nodeId: 2, incarnation: 0 }, { pendingReason: UNSCHEDULABLE });
    return store;
  }

  it('waits until the join deadline, then fails the round naming who joined and why the rest are pending', async () => {
    const now = { t: 1000 };
    const store = await oneJoined(now);
    expect(await store.transaction((tx) => settleRound(tx, key, rules, now.t))).toEqual({ status: 'open', recheckAt: 61_000 });
    now.t = 61_000;
    const reason = `rendezvous round 1: only 1 of min 2 nodes joined within 1m; 2 nodes still pending: nodes 1, 2 (${UNSCHEDULABLE})`;
    expect(await store.transaction((tx) => settleRound(tx, key, rules, now.t, { source: 'worker' }))).toEqual({ status: 'failed', reason });
    expect((await store.rendezvous.getRound(key))?.status).toBe('failed');
    const events = await store.nodeEvents.list('j', { kinds: ['rendezvous_failed'] });
    expect(events.map((e) => [e.source, e.data])).toEqual([['worker', { round: 1, reason, joined: 1, pending: 2 }]]);
    // Settled once: the API asking afterwards writes nothing more.
    expect(await store.transaction((tx) => settleRound(tx, key, rules, now.t))).toEqual({ status: 'settled' });
    expect(await store.nodeEvents.list('j', { kinds: ['rendezvous_failed'] })).toHaveLength(1);
  });

  it('closes a formable round after its last call, with ranks, whoever asks', async () => {
    const now = { t: 1000 };
    const store = await oneJoined(now);
    await store.nodes.update({ jobId: 'j', nodeId: 1, incarnation: 0 }, { status: 'running' });
    await store.rendezvous.join({ ...key, nodeId: 1, incarnation: 0, host: 'h1', freePort: 2 });
    now.t = 2500;
    expect(await store.transaction((tx) => settleRound(tx, key, rules, now.t))).toEqual({ status: 'closed', openedAt: 1000 });
    expect((await store.nodes.get({ jobId: 'j', nodeId: 1, incarnation: 0 }))?.rank).toBe(1);
    expect((await store.nodeEvents.list('j', { kinds: ['round_closed'] })).map((e) => e.data)).toEqual([
      { round: 1, members: [{ node: 0, incarnation: 0, groupRank: 0 }, { node: 1, incarnation: 0, groupRank: 1 }], excluded: [], masterAddr: 'h0', masterPort: 1 },
    ]);
  });

  it('closes with the members a join adds while it settles, or the join finds the round closed: no member is left without a rank', async () => {
    // Round 1 (min 1, max 2), node 1 joined and its last call is over; node 0 joins while a poll
    // settles the round. On MySQL the two run in parallel: a close that decided on the members read
    // before the join committed left node 0 in a closed round with no rank (issue 19).
    const now = { t: 1000 };
    const store = await h.open({ now: () => now.t });
    await store.rendezvous.openRound({ ...key, minNodes: 1, maxNodes: 2 });
    await store.rendezvous.join({ ...key, nodeId: 1, incarnation: 0, host: 'h1', freePort: 2 });
    now.t = 2500;
    let joining: Promise<'joined' | 'round not open' | 'lock wait timeout'> | undefined;
    const settled = await store.transaction((tx) => {
      const rendezvous = Object.create(tx.rendezvous) as TransactionScope['rendezvous'];
      rendezvous.listMembers = async (k, trx) => {
        const members = await tx.rendezvous.listMembers(k, trx);
        joining = joinNode0(store);
        // On SQLite the join waits for this transaction (one connection); on MySQL it either
        // commits now or gives up on a lock this transaction holds.
        if (store.dialect === 'mysql') await joining;
        return members;
      };
      return settleRound({ ...tx, rendezvous }, key, rules, now.t);
    });
    const joined = await joining;
    expect(settled.status).toBe('closed');
    const round = await store.rendezvous.getRound(key);
    const members = await store.rendezvous.listMembers(key);
    expect(members.filter((m) => m.rank === null)).toEqual([]);
    expect(round?.nodeCount).toBe(members.length);
    // Node 0 is in the world, or not a member of the closed round at all (its next join opens round 2).
    expect(joined === 'joined').toBe(members.some((m) => m.nodeId === 0));
  });
});

/**
 * Node 0 joins round 1 in a transaction of its own. On MySQL it waits at most 1 s for a row lock
 * (innodb_lock_wait_timeout), so a join that a settling transaction holds back ends instead of
 * waiting for it: the API reruns such a join.
 */
async function joinNode0(store: Store): Promise<'joined' | 'round not open' | 'lock wait timeout'> {
  const join = (trx?: Trx) => store.rendezvous.join({ ...key, nodeId: 0, incarnation: 0, host: 'h0', freePort: 1 }, trx);
  if (store.dialect !== 'mysql') return (await join()) ? 'joined' : 'round not open';
  return store.db.connection().execute(async (conn) => {
    await sql`set innodb_lock_wait_timeout = 1`.execute(conn);
    try {
      return (await conn.transaction().execute((trx) => join(trx))) ? 'joined' : 'round not open';
    } catch (err) {
      if (isLockConflict(err)) return 'lock wait timeout';
      throw err;
    }
  });
}
