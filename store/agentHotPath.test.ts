// The agent hot path migration, on both dialects: rounds of a store from before it count their
// members, so a round still filling decides from its row like a new one.
import { Kysely, Migrator } from 'kysely';
import { expect, it } from 'vitest';
import { dialectForUrl } from './connect.ts';
import { openStore } from './index.ts';
import { migrationProvider } from './migrations.ts';
import { describeEachStore } from './testing.ts';

const HOT_PATH_MIGRATION = '2026_12_02_0100_agent_hot_path';

describeEachStore('agent hot path migration', (h) => {
  it('counts the members of rounds from before, and the next join counts on', async () => {
    const url = await h.freshUrl();
    const { dialect, kind } = dialectForUrl(url);
    const old = new Kysely<any>({ dialect });
    const migrator = new Migrator({ db: old, provider: migrationProvider(kind) });
    const names = (await migrator.getMigrations()).map((m) => m.name);
    expect((await migrator.migrateTo(names[names.indexOf(HOT_PATH_MIGRATION) - 1]!)).error).toBeUndefined();
    for (const round of [1, 2]) {
      await old.insertInto('rendezvous_rounds').values({ job_id: 'j', round, status: round === 1 ? 'closed' : 'open', opened_at: 1, min_nodes: 1, max_nodes: 4 }).execute();
    }
    const member = (round: number, node_id: number) => ({ job_id: 'j', round, node_id, incarnation: 0, host: `h${node_id}`, joined_at: 1 });
    await old.insertInto('rendezvous_members').values([member(1, 0), member(1, 1), member(1, 2), member(2, 0)]).execute();
    await old.destroy();

    const store = await openStore(url);
    try {
      expect((await store.rendezvous.getRound({ jobId: 'j', round: 1 }))?.memberCount).toBe(3);
      expect((await store.rendezvous.getRound({ jobId: 'j', round: 2 }))?.memberCount).toBe(1);
      await store.rendezvous.join({ jobId: 'j', round: 2, nodeId: 1, incarnation: 0, host: 'h1' });
      expect((await store.rendezvous.getRound({ jobId: 'j', round: 2 }))?.memberCount).toBe(2);
    } finally {
      await store.close();
    }
  });
});
