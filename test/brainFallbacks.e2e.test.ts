// The job master leaning on the Brain, end to end, with the Brain as its own process stopped
// and restarted by pid: an OOM while the Brain is down still gets more memory (the job master's
// own rule, said in a brain_plan event); an initial plan missed while it was down is asked for
// again once it is back; running plans are timed from the last applied change.
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { LOCAL_OOM_RULE } from '../common/brainPlans.ts';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import { freePort } from '../deploy/local/devServer.ts';
import { historyKey, METRIC_THROUGHPUT } from '../store/index.ts';
import { describeEachDialect } from '../store/testing.ts';
import { statusQuery, stopSignal } from '../workflows/job/messages.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { repoRoot } from './jobFixtures.ts';
import { startTestStack, type TestStack } from './stack.ts';

const MiB = 1024 * 1024;

interface Options {
  memory: string;
  args: string[];
  nodes: { min: number; max: number; initial: number };
  autoScaling?: object;
  /** spec.resources.oomFactor and oomMemoryCap: the job master's own OOM rule. */
  oom?: { factor: number; cap: string };
  /** Another user has no similar jobs from the other tests. */
  user?: string;
}

function spec(home: string, name: string, o: Options): JobSpec {
  const parsed = parseJobSpec({
    metadata: { name, user: o.user ?? 'brain-fallbacks' },
    spec: {
      nodes: o.nodes,
      nprocPerNode: 1,
      entrypoint: { command: 'python3', args: ['examples/trainer.py', '--step-time', '0.05', '--connect-timeout', '20', ...o.args], workdir: repoRoot },
      resources: { memory: o.memory, ...(o.oom && { oomFactor: o.oom.factor, oomMemoryCap: o.oom.cap }) },
      faultTolerance: { maxProcessRestarts: 0, maxNodeRelaunches: 3, heartbeatInterval: '200ms', heartbeatTimeout: '10s' },
      rendezvous: { lastCallTimeout: '1s', joinTimeout: '60s' },
      checkpoint: { dir: path.join(home, 'checkpoints', name) },
      ...(o.autoScaling && { autoScaling: o.autoScaling }),
    },
  });
  if (!parsed.ok) throw new Error(`bad test spec: ${JSON.stringify(parsed.errors)}`);
  return parsed.spec;
}

describeEachDialect('a job master with its Brain as a separate process', (dialect) => {
  let stack: TestStack;

  beforeAll(async () => {
    const brainPort = await freePort();
    stack = await startTestStack(`brain fallbacks ${dialect}`, { ROVER_BRAIN_PORT: String(brainPort), ROVER_BRAIN_URL: `http://127.0.0.1:${brainPort}` }, { store: dialect });
    await Promise.all([stack.startWorker(), stack.startApi(), stack.startBrain()]);
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  const submit = (s: JobSpec) => submitJob(stack.client, s, { taskQueue: stack.config.temporal.taskQueue });
  const status = (name: string) => stack.client.workflow.getHandle(`job-${name}`).query(statusQuery);
  const planEvents = async (name: string) =>
    (await stack.store.nodeEvents.list(name, { kinds: ['brain_plan'] })).map((e) => e.data as { optimizer: string; rule: string; decidedBy: string; reason: string; memoryBytes?: number; nodes?: number });

  it('raises an OOM node\'s memory by the spec\'s factor up to its cap while the Brain is down, says so in a brain_plan event, and succeeds', async () => {
    await stack.kill('brain');
    // 128 MiB of data memory cannot hold the 180 MiB the trainer allocates; 3× that, capped at 300 MiB, can.
    const handle = await submit(spec(stack.home, 'oom-no-brain', {
      memory: '128Mi', args: ['--steps', '30', '--alloc-mb', '180'], nodes: { min: 1, max: 1, initial: 1 }, oom: { factor: 3, cap: '300Mi' },
    }));
    const result = await jobOutcome(handle);
    expect(result.phase, result.reason ?? '').toBe('SUCCEEDED');
    expect(result.nodeRelaunches).toBe(1);
    const oom = (result.plans ?? []).filter((p) => p.stage === 'oom');
    expect(oom).toHaveLength(1);
    expect(oom[0]).toMatchObject({ rule: LOCAL_OOM_RULE, applied: `node 0 incarnation 1: memory ${128 * MiB} → ${300 * MiB} bytes (decided by the job master)` });
    const final = await stack.store.nodes.get({ jobId: 'oom-no-brain', nodeId: 0, incarnation: 1 });
    expect((final?.resources as { memory: number }).memory).toBe(300 * MiB);
    expect(await planEvents('oom-no-brain')).toEqual([expect.objectContaining({ optimizer: 'oom', rule: LOCAL_OOM_RULE, decidedBy: 'job master', memoryBytes: 300 * MiB })]);
    // Honest history: the OOM counts on this run's summary though the Brain never heard of it.
    const key = historyKey('oom-no-brain', (await stack.store.jobs.get('oom-no-brain'))!.tokenDigest);
    expect(await stack.store.jobHistory.get(key)).toMatchObject({ nodeFailures: 1, oomFailures: 1 });
  }, 300_000);

  it('asks again for an initial plan missed while the Brain was down, and grows to the size history says', async () => {
    const name = 'missed-initial';
    // Two ended runs of this job that finished with 3 nodes.
    for (const i of [1, 2]) {
      await stack.store.jobHistory.recordStart({
        jobId: `${name}@old${i}`, name, user: 'brain-fallbacks', group: '', cluster: 'local', entrypoint: 'python3 examples/trainer.py', datasetSize: null,
        minNodes: 1, maxNodes: 3, initialNodes: 3, memoryBytes: 256 * MiB, cpu: 1, phase: 'RUNNING',
      });
      await stack.store.jobHistory.recordOutcome(`${name}@old${i}`, { phase: 'SUCCEEDED', finalNodes: 3, peakRssBytes: 40 * MiB, peakCpu: 0.2, endedAt: Date.now() - i });
    }
    if (stack.brain.pid) await stack.kill('brain').catch(() => undefined);
    const handle = await submit(spec(stack.home, name, {
      memory: '256Mi', args: ['--steps', '100000'], nodes: { min: 1, max: 3, initial: 1 }, autoScaling: { enabled: true, interval: '2s' },
    }));
    await waitUntil(async () => {
      const s = await status(name);
      return s.phase === 'RUNNING' && s.warnings.some((w) => w.startsWith('Brain unavailable for the initial plan'));
    }, `${name} running at 1 node without its initial plan`, 120_000, 250);
    expect((await status(name)).targetNodes).toBe(1);
    await stack.startBrain();
    const grown = await waitUntil(async () => {
      const s = await status(name);
      return s.targetNodes === 3 ? s : undefined;
    }, `${name} grown to 3 nodes by the initial plan asked again`, 120_000, 250);
    const initial = (grown.plans ?? []).filter((p) => p.stage === 'initial');
    expect(initial).toHaveLength(1);
    expect(initial[0]).toMatchObject({ rule: 'history-percentile' });
    expect(initial[0]!.applied).toContain('asked again once the Brain answered');
    expect(initial[0]!.applied).toContain('→ 3 nodes');
    expect(await planEvents(name)).toContainEqual(expect.objectContaining({ optimizer: 'initial', rule: 'history-percentile', decidedBy: 'brain', nodes: 3 }));
    // The round the plan opened names it: optimizer and reason, not only the size.
    const causes = (await stack.store.nodeEvents.list(name, { kinds: ['round_opened'] })).map((e) => (e.data as { cause?: string }).cause);
    expect(causes).toContainEqual(expect.stringMatching(/^Brain plan \(initial optimizer: .+\): scale to 3 nodes$/));
    await handle.signal(stopSignal, { reason: 'test over' });
    expect((await jobOutcome(handle)).phase).toBe('STOPPED');
  }, 300_000);

  it('times each running plan from the last applied change, so a new size is judged on its own samples', async () => {
    const name = 'paced';
    const intervalMs = 3000;
    const handle = await submit(spec(stack.home, name, {
      memory: '256Mi', args: ['--steps', '100000'], nodes: { min: 1, max: 3, initial: 1 }, autoScaling: { enabled: true, interval: `${intervalMs}ms` }, user: 'pacer',
    }));
    const scaled = await waitUntil(async () => {
      const s = await status(name);
      return s.targetNodes === 3 ? s : undefined;
    }, `${name} scaled 1 → 2 → 3 by running plans`, 240_000, 250);
    const steps = (scaled.plans ?? []).filter((p) => p.stage === 'running' && p.applied.startsWith('scale'));
    expect(steps.map((p) => p.applied)).toEqual(['scale 1 → 2 nodes', 'scale 2 → 3 nodes']);
    // Workflow time: the second decision came a full interval after the first was applied…
    expect(steps[1]!.at - steps[0]!.at).toBeGreaterThanOrEqual(intervalMs);
    // …and on at least the optimizer's minimum of samples measured at 2 nodes before it.
    const atTwo = (await stack.store.metrics.list(name, METRIC_THROUGHPUT)).filter((m) => m.labels.nodes === '2' && m.createdAt <= steps[1]!.at);
    expect(atTwo.length).toBeGreaterThanOrEqual(3);
    expect((await planEvents(name)).filter((e) => e.optimizer === 'running').map((e) => e.rule)).toContain('scale-up-efficient');
    await handle.signal(stopSignal, { reason: 'test over' });
    expect((await jobOutcome(handle)).phase).toBe('STOPPED');
  }, 300_000);
});
