// A job name reused after its run ended: prepareJob's one reset (store resetJob) is all that
// stands between the new run and the old run's shard ledger and checkpoints; the API's ledger
// only ever creates the run's own.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { createJobActivities } from '../activities/job.ts';
import { captureBackend } from '../cluster/testing.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { LedgerService } from './ledger.ts';

const parsed = parseJobSpec({
  metadata: { name: 'again', user: 'ada' },
  spec: { nodes: { min: 1 }, entrypoint: { command: 'true' }, dataset: { size: 40, shardSize: 10 } },
});
if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
const spec = parsed.spec;

describeEachStore('reusing a job name', (h) => {
  it("starts the new run's ledger from nothing: no shard progress, no checkpoint of the old run", async () => {
    const store = await h.open();
    const config = loadConfig({ ROVER_HOME: mkdtempSync(path.join(os.tmpdir(), 'rover-reuse-')), ROVER_OPERATOR_TOKEN: 'signing-key-of-the-reuse-tests' });
    const acts = createJobActivities({ store, backends: [captureBackend().backend], config, logger: createLogger('test', 'silent') });
    const ledger = new LedgerService(store, () => 1_000_000);
    const run = async (runKey: string) => {
      await acts.prepareJob({ jobId: 'again', workflowId: 'job-again', spec, runKey, targetNodes: 1 });
      return (await store.jobs.get('again'))!;
    };

    const first = await run('0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9');
    await ledger.progress(first);
    await store.shards.markDone({ jobId: 'again', epoch: 0, shardIndex: 0 });
    await store.checkpoints.report({ jobId: 'again', step: 5, rank: 0, path: '/ckpt/5', bytes: 1, checksum: 'c' });
    await store.checkpoints.commit({ jobId: 'again', step: 5, worldSize: 1, shardCursor: {} });
    await acts.finishJob({ jobId: 'again', phase: 'SUCCEEDED', reason: null });

    const second = await run('9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a');
    expect(second.tokenDigest).not.toBe(first.tokenDigest);
    expect(await ledger.latest(second, undefined)).toEqual({ step: 0, ranks: [] });
    expect(await ledger.progress(second)).toMatchObject({ total: 4, queued: 4, done: 0 });
    expect((await store.shardLedgers.get('again'))?.tokenDigest).toBe(second.tokenDigest);
  });
});
