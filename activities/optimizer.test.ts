// The job master's own OOM plan (the Brain down) is honest history: the node failure behind it is
// counted on this run's summary, as the Brain's OOM stage counts it when it answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localOomPlan } from '../common/brainPlans.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { historyKey, openStore, type Store } from '../store/index.ts';
import { testJobSpec } from '../store/testing.ts';
import { recordJobStart } from './jobHistory.ts';
import { createOptimizerActivities } from './optimizer.ts';

const MiB = 2 ** 20;

describe('recordLocalPlan', () => {
  let store: Store;
  beforeAll(async () => {
    store = await openStore('sqlite::memory:');
    await store.jobs.create({ id: 'oom-1', workflowId: 'job-oom-1', user: 'u', group: '', backend: 'local', spec: testJobSpec(), phase: 'RUNNING', token: 't' });
  });
  afterAll(async () => {
    await store.close();
  });

  it("records an OOM plan's failure under this run's history key, counted on its summary, with the plan event", async () => {
    const job = (await store.jobs.get('oom-1'))!;
    await recordJobStart(store, job.id, job.tokenDigest, job.spec);
    const activities = createOptimizerActivities({ config: loadConfig({}), logger: createLogger('test', 'silent'), store });
    const plan = localOomPlan(0, 128 * MiB, 1)!;
    await activities.recordLocalPlan({ job: 'oom-1', plan, failure: { incarnation: 0, exitCode: 137, reason: 'killed by SIGKILL (out of memory)' } });

    const key = historyKey(job.id, job.tokenDigest);
    expect(await store.jobHistory.get(key)).toMatchObject({ nodeFailures: 1, oomFailures: 1 });
    expect(await store.jobHistory.failures(key)).toMatchObject([{ nodeId: 0, incarnation: 0, exitCode: 137, oom: true }]);
    const events = await store.nodeEvents.list('oom-1', { kinds: ['brain_plan'] });
    expect(events.map((e) => (e.data as { decidedBy: string }).decidedBy)).toEqual(['job master']);
  });

  it('says when the cap, not the factor, set the memory', () => {
    expect(localOomPlan(0, 128 * MiB, 1, { factor: 3, capBytes: 300 * MiB })!.reason).toBe(
      `the Brain did not answer: the job master raised node 0's memory itself, 3× ${128 * MiB} = ${384 * MiB} bytes, capped at ${300 * MiB}`,
    );
  });
});
