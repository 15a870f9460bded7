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

  it('prints the same plans as JSON objects with --json', async () => {
    const { lines } = await print(true);
    expect(lines.map((l) => JSON.parse(l) as { kind: string; data: { optimizer: string; rule: string } }).map((e) => [e.kind, e.data.optimizer, e.data.rule])).toEqual([
      ['brain_plan', 'running', 'throughput-scales'],
      ['brain_plan', 'oom', 'local-oom-factor'],
    ]);
  });
});
