// `rover events <job> --kind brain_plan`: every plan the job received, or made itself while the
// Brain was down, is one line with its optimizer, rule, reason and who decided it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localOomPlan } from '../common/brainPlans.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { createOptimizerActivities } from '../activities/optimizer.ts';
import { openStore, type Store } from '../store/index.ts';
import { testJobSpec } from '../store/testing.ts';
import { printEvents } from './events.ts';

describe('rover events --kind brain_plan', () => {
  let store: Store;
  const MiB = 2 ** 20;

  beforeAll(async () => {
    store = await openStore('sqlite::memory:');
    await store.jobs.create({ id: 'grow', workflowId: 'job-grow', user: 'u', group: '', backend: 'local', spec: testJobSpec(), phase: 'SUCCEEDED', token: 't' });
    await store.nodeEvents.append({ jobId: 'grow', nodeId: 0, incarnation: 0, kind: 'node_launched', data: { pid: 100 } });
    // A running plan as the optimize activity records the Brain's answer…
    await store.nodeEvents.append({
      jobId: 'grow',
      kind: 'brain_plan',
      data: { optimizer: 'running', rule: 'throughput-scales', reason: 'throughput rose 1.4× per node', decidedBy: 'brain', nodes: 3, inputs: { efficiency: 1.4 } },
    });
    // …and an OOM plan the job master made itself, through the activity that records it.
    const activities = createOptimizerActivities({ config: loadConfig({}), logger: createLogger('test', 'silent'), store });
    await activities.recordLocalPlan({ job: 'grow', plan: localOomPlan(1, 128 * MiB, 1, { factor: 3, capBytes: 1024 * MiB })! });
  });
  afterAll(async () => {
    await store.close();
  });

  const print = async (json: boolean) => {
    let text = '';
    const printed = await printEvents(store, 'grow', { follow: false, kinds: ['brain_plan'], json, write: (t) => (text += t) });
    return { printed, lines: text.trimEnd().split('\n') };
  };

  it('prints each plan with its optimizer, rule, reason and who decided it, and nothing else', async () => {
    const { printed, lines } = await print(false);
    expect(printed).toBe(2);
    expect(lines[0]).toContain('brain_plan');
    expect(lines[0]).toContain('optimizer=running rule=throughput-scales reason=throughput rose 1.4× per node decidedBy=brain nodes=3 inputs={"efficiency":1.4}');
    expect(lines[1]).toMatch(/node 1\/\? +optimizer=oom rule=local-oom-factor reason=the Brain did not answer: the job master raised node 1's memory itself, 3× 134217728 = 402653184 bytes \(cap 1073741824\) decidedBy=job master/);
    expect(lines.join('\n')).not.toContain('node_launched');
  });

  it("reads each row through its kind's schema: a stack dump's evidence goes under its line, and a row no schema describes says why instead of its fields", async () => {
    await store.nodeEvents.append({
      jobId: 'grow', nodeId: 1, incarnation: 0, rank: 1, kind: 'stack_dump',
      data: { hang: 1, method: 'py-spy', pid: 4242, localRank: 1, stack: 'Thread 4242 (idle)\n  train (train.py:12)\n', logTail: 'step 7', processTree: '4242 python train.py' },
    });
    // Past the typed append, as a row of another writer would be.
    const bad = { jobId: 'grow', nodeId: 0, incarnation: 0, kind: 'node_failed', data: JSON.stringify({ exitCode: 'one', round: 1 }), createdAt: 1, source: 'agent', rank: null };
    await store.db.insertInto('nodeEvents').values(bad).execute();
    let text = '';
    await printEvents(store, 'grow', { follow: false, kinds: ['stack_dump', 'node_failed'], json: false, write: (t) => (text += t) });
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/stack_dump +node 1\/0 rank 1 +hang=1 method=py-spy pid=4242 localRank=1$/);
    expect(lines.slice(1, 4)).toEqual(['    Thread 4242 (idle)', '      train (train.py:12)', '    4242 python train.py']);
    expect(lines[4]).toMatch(/node_failed +node 0\/0 +\(unreadable: data\.exitCode: .*\)$/);
    let json = '';
    await printEvents(store, 'grow', { follow: false, kinds: ['node_failed'], json: true, write: (t) => (json += t) });
    expect(JSON.parse(json)).toMatchObject({ kind: 'node_failed', data: { exitCode: 'one', round: 1 }, problem: expect.stringMatching(/^data\.exitCode: /) });
  });

  it('prints the same plans as JSON objects with --json', async () => {
    const { lines } = await print(true);
    expect(lines.map((l) => JSON.parse(l) as { kind: string; data: { optimizer: string; rule: string } }).map((e) => [e.kind, e.data.optimizer, e.data.rule])).toEqual([
      ['brain_plan', 'running', 'throughput-scales'],
      ['brain_plan', 'oom', 'local-oom-factor'],
    ]);
  });
});
