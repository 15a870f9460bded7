// settleRound: the one round policy applied to the store, by the API (an agent asks) and by the
// job workflow's join-deadline timer (no agent may be alive).
import { expect, it } from 'vitest';
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
});
