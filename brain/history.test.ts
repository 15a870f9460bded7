// One job key for the Brain's history, on both dialects: a run's OOM failures (recorded by the
// oom stage) count on the summary its activities keep, and reach the initial optimizer of the
// next similar job as its inputs.
import { expect, it } from 'vitest';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import { tokenDigest } from '../common/tokens.ts';
import { historyKey, type Store } from '../store/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { BrainService } from './service.ts';

const MiB = 1024 * 1024;

function spec(name: string): JobSpec {
  const parsed = parseJobSpec({
    metadata: { name, user: 'ada', group: 'nlp' },
    spec: { nodes: { min: 1, max: 4, initial: 1 }, entrypoint: { command: 'python3', args: ['train.py'] }, resources: { memory: '128Mi' } },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec;
}

/** Submits run `token` of job `id`, the way prepareJob records it: job row + summary under the history key. */
async function startRun(store: Store, id: string, token: string): Promise<string> {
  const s = spec('bert');
  const digest = tokenDigest(token);
  if (await store.jobs.get(id)) await store.jobs.replace({ id, workflowId: `job-${id}`, user: 'ada', group: 'nlp', backend: 'local', spec: s, phase: 'RUNNING', token });
  else await store.jobs.create({ id, workflowId: `job-${id}`, user: 'ada', group: 'nlp', backend: 'local', spec: s, phase: 'RUNNING', token });
  const key = historyKey(id, digest);
  await store.jobHistory.recordStart({
    jobId: key, name: 'bert', user: 'ada', group: 'nlp', cluster: 'local', entrypoint: 'python3 train.py', datasetSize: null,
    minNodes: 1, maxNodes: 4, initialNodes: 1, memoryBytes: 128 * MiB, cpu: 1, phase: 'RUNNING',
  });
  return key;
}

describeEachStore('the Brain\'s job history', (h) => {
  // [past runs' OOMs (each run a rerun under one name), OOMs the optimizer sees for the next job]
  const cases: [string, number[], number][] = [
    ['no failures', [0], 0],
    ['one run with two OOMs', [2], 2],
    ['reruns under one name keep their own counts', [1, 0, 3], 4],
  ];
  it.each(cases)('%s: OOM counts reach the initial optimizer', async (_t, ooms, seen) => {
    const store = await h.open();
    const brain = new BrainService(store);
    for (const [run, count] of ooms.entries()) {
      const key = await startRun(store, 'bert-a', `token-${run}`);
      for (let i = 0; i < count; i += 1) {
        await brain.optimize({ job: 'bert-a', stage: 'oom', nodeId: 0, incarnation: i, exitCode: 1, reason: 'MemoryError', memoryBytes: 128 * MiB });
      }
      expect(await store.jobHistory.get(key)).toMatchObject({ oomFailures: count, nodeFailures: count });
      expect((await store.jobHistory.failures(key)).length).toBe(count);
      await store.jobHistory.recordOutcome(key, { phase: 'SUCCEEDED', finalNodes: 1, peakRssBytes: 100 * MiB, peakCpu: 0.5, endedAt: Date.now() + run });
    }
    await startRun(store, 'bert-b', 'token-b');
    const { plan } = await brain.optimize({ job: 'bert-b', stage: 'initial' });
    expect(plan.rule).toBe('history-percentile');
    expect(plan.inputs).toMatchObject({ similarJobs: ooms.length, oomFailures: seen });
  });
});
