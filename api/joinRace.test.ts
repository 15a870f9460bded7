// A join racing a round's close on MySQL, where the two run in parallel (SQLite runs one writer
// at a time, so the race cannot happen there): the joiner must not be left waiting in a world
// that formed without it.
import { expect, it } from 'vitest';
import { parseJobSpec } from '../common/spec/index.ts';
import { settleRound, type Store, type TransactionScope } from '../store/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { AgentService } from './agentService.ts';

describeEachStore('a join racing a close', (h) => {
  it.runIf(h.dialect === 'mysql')('opens the next round when the round it read as open closes before it joins', async () => {
    const now = { t: 1000 };
    const store = await h.open({ now: () => now.t });
    const parsed = parseJobSpec({ metadata: { name: 'race', user: 'u' }, spec: { nodes: { min: 1, max: 2 }, entrypoint: { command: 'true' } } });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    await store.jobs.create({ id: 'race', workflowId: 'job-race', user: 'u', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: 't' });
    const key = { jobId: 'race', round: 1 };
    await store.rendezvous.openRound({ ...key, minNodes: 1, maxNodes: 2 });
    await store.rendezvous.join({ ...key, nodeId: 1, incarnation: 0, host: 'h1', freePort: 2 });
    now.t = 60_000; // node 1's last call is over: a poll closes round 1 with node 1 alone

    // Node 1's poll closes round 1 right after node 0's join read it as open.
    let closedUnderTheJoin = false;
    const racing: Store = {
      ...store,
      contendedTransaction: (fn) =>
        store.contendedTransaction((tx) => {
          const rendezvous = Object.create(tx.rendezvous) as TransactionScope['rendezvous'];
          rendezvous.latestRound = async (jobId, trx) => {
            const latest = await tx.rendezvous.latestRound(jobId, trx);
            if (!closedUnderTheJoin) {
              closedUnderTheJoin = true;
              const rules = { unit: 1, lastCallTimeoutMs: parsed.spec.spec.rendezvous.lastCallTimeout, joinTimeoutMs: parsed.spec.spec.rendezvous.joinTimeout };
              expect(await store.transaction((other) => settleRound(other, key, rules, now.t))).toMatchObject({ status: 'closed' });
            }
            return latest;
          };
          return fn({ ...tx, rendezvous });
        }),
    };
    const job = (await store.jobs.get('race'))!;
    const round = await new AgentService(racing, () => now.t).join(job, { node: 0, incarnation: 0, host: 'h0', freePort: 1 });

    expect(closedUnderTheJoin).toBe(true);
    expect(round).toBe(2);
    expect((await store.rendezvous.getRound({ jobId: 'race', round: 2 }))?.status).toBe('open');
    expect((await store.rendezvous.getMembers({ jobId: 'race', round: 2 }, [0]))[0]?.incarnation).toBe(0);
    expect(await store.rendezvous.getMembers(key, [0])).toEqual([]);
  });
});
