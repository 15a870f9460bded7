// A job name reused after its run ended: the new run starts from nothing the old one left, and
// the Brain keeps the old run's history.
import { expect, it } from 'vitest';
import { resetJob, type Store } from './index.ts';
import { describeEachStore } from './testing.ts';

describeEachStore('resetJob', (h) => {
  /** Everything one run of `jobId` leaves in the store. */
  async function oneRun(store: Store, jobId: string): Promise<void> {
    await store.nodes.upsertLaunch({ jobId, nodeId: 0, incarnation: 0, backend: 'local', status: 'launching' });
    await store.nodeEvents.append({ jobId, kind: 'round_opened', data: { round: 1, cause: 'job start' } });
    await store.rendezvous.openRound({ jobId, round: 1, minNodes: 1, maxNodes: 1 });
    await store.metrics.record([{ jobId, name: 'step', value: 7 }]);
    await store.shardLedgers.create(jobId, `digest-${jobId}`);
    await store.shards.createEpoch(jobId, 0, [{ startIndex: 0, endIndex: 16 }]);
    await store.checkpoints.report({ jobId, step: 5, rank: 0, path: '/ckpt/5', bytes: 1, checksum: 'c' });
    await store.checkpoints.commit({ jobId, step: 5, worldSize: 1, shardCursor: {} });
    await store.jobHistory.recordFailure({ jobId: `${jobId}@run1`, nodeId: 0, incarnation: 0, exitCode: 137, reason: 'oom', oom: true });
  }

  it("forgets the previous run's nodes, events, rounds, metrics, shards and checkpoints, and only that job's", async () => {
    const store = await h.open();
    await oneRun(store, 'reused');
    await oneRun(store, 'other');
    await store.transaction((tx) => resetJob(tx, 'reused'));

    const left = async (jobId: string) => ({
      nodes: (await store.nodes.listByJob(jobId)).length,
      events: (await store.nodeEvents.list(jobId)).length,
      round: (await store.rendezvous.latestRound(jobId))?.round ?? null,
      metrics: (await store.metrics.list(jobId, 'step')).length,
      ledger: (await store.shardLedgers.get(jobId)) !== undefined,
      shard: (await store.shards.get({ jobId, epoch: 0, shardIndex: 0 })) !== undefined,
      commits: (await store.checkpoints.listCommits(jobId)).length,
      reports: (await store.checkpoints.listForStep(jobId, 5)).length,
    });
    expect(await left('reused')).toEqual({ nodes: 0, events: 0, round: null, metrics: 0, ledger: false, shard: false, commits: 0, reports: 0 });
    expect(await left('other')).toEqual({ nodes: 1, events: 1, round: 1, metrics: 1, ledger: true, shard: true, commits: 1, reports: 1 });
    // The Brain's history is kept per run.
    expect(await store.jobHistory.failures('reused@run1')).toHaveLength(1);
  });
});
