// What `rover status`, `watch` and `submit --wait` show of a job's progress: read from a real
// store (node steps, rank 0's step samples, the spec's step target) and printed. The arithmetic
// itself is tested in common/trainingProgress.test.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseJobSpec } from '../common/spec/index.ts';
import { openStore, type Store } from '../store/index.ts';
import type { JobStatus } from '../workflows/job/messages.ts';
import { formatJobStatus, formatProgressLine } from './format.ts';
import { readJobProgress } from './progress.ts';

describe('formatProgressLine', () => {
  it('shows phase, world size, round, step, rate, progress and ETA', () => {
    const line = formatProgressLine({ phase: 'RUNNING', worldSize: 8, round: 1 }, { step: 1200, stepsPerSecond: 12.345, fraction: 0.4523, etaSeconds: 185 });
    expect(line).toBe('RUNNING · world 8 · round 1 · step 1200 · 12.3 steps/s · 45.2% · ETA 3m05s');
  });

  it('shows the step against the step target when the spec has one', () => {
    const line = formatProgressLine({ phase: 'RUNNING', worldSize: 8, round: 1 }, { step: 1200, stepsPerSecond: 10, maxSteps: 5000, fraction: 0.24, etaSeconds: 380 });
    expect(line).toBe('RUNNING · world 8 · round 1 · step 1200/5000 · 10.0 steps/s · 24.0% · ETA 6m20s');
  });

  it('leaves out what is not known yet', () => {
    expect(formatProgressLine({ phase: 'RENDEZVOUS', worldSize: 0, round: 0 }, { step: null, stepsPerSecond: null, fraction: null, etaSeconds: null })).toBe(
      'RENDEZVOUS · world 0 · round 0',
    );
  });
});

describe('readJobProgress', () => {
  const T0 = 1_700_000_000_000;
  let dir: string | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    store = dir = undefined;
  });

  /** A job of two running nodes, rank 0 stepping 10/s for the last 20 s up to `step`. */
  async function jobAt(step: number, extra: Record<string, unknown>): Promise<{ store: Store; status: JobStatus }> {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rover-progress-'));
    store = await openStore(`sqlite:${path.join(dir, 'rover.db')}`, { now: () => T0 });
    const parsed = parseJobSpec({ metadata: { name: 'p', user: 'ada' }, spec: { entrypoint: { command: 'python3', args: ['train.py'] }, ...extra } }, { cwd: dir, env: {} });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    await store.jobs.create({ id: 'p', workflowId: 'job-p', user: 'ada', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: 't' });
    for (const nodeId of [0, 1]) {
      await store.nodes.upsertLaunch({ jobId: 'p', nodeId, incarnation: 0, backend: 'local', status: 'launching' });
      await store.nodes.update({ jobId: 'p', nodeId, incarnation: 0 }, { status: 'running', rank: nodeId, step: nodeId === 0 ? step : step - 3 });
    }
    await store.metrics.record([0, 10, 20].map((ago) => ({ jobId: 'p', nodeId: 0, incarnation: 0, name: 'step', value: step - ago * 10, createdAt: T0 - ago * 1000 })));
    const node = (id: number) => ({ id, rank: id, incarnation: 0, status: 'running' as const, restarts: 0, pid: null, exitCode: null, reason: null });
    const status: JobStatus = {
      jobId: 'p', workflowId: 'job-p', phase: 'RUNNING', round: 1, worldSize: 2, targetNodes: 2, nodes: [node(0), node(1)],
      nodeRelaunches: 0, processRestarts: 0, reason: null, warnings: [], checkpointStep: 0, epochsDone: 0,
    };
    return { store, status };
  }

  it('shows the step of spec.maxSteps, the progress and the ETA at the step rate on the status page', async () => {
    const job = await jobAt(1200, { maxSteps: 5000 });
    const progress = await readJobProgress(job.store, job.status, T0 - 60_000, T0);
    expect(progress).toMatchObject({ step: 1200, stepsPerSecond: 10, maxSteps: 5000, fraction: 0.24, etaSeconds: 380, basis: 'steps', shards: null });
    const page = formatJobStatus(job.status, progress);
    expect(page).toContain('step:         1200 of 5000\nsteps/s:      10.0\nprogress:     24.0%\nETA:          6m20s');
  });

  it('shows 100% and no ETA once the step passed the target', async () => {
    const job = await jobAt(5200, { maxSteps: 5000 });
    const progress = await readJobProgress(job.store, job.status, T0 - 60_000, T0);
    expect(progress).toMatchObject({ fraction: 1, etaSeconds: null });
    expect(formatJobStatus(job.status, progress)).toContain('progress:     100.0%\nETA:          -');
  });

  it('keeps the last step of an ended job, whose nodes are no longer running', async () => {
    const job = await jobAt(5000, { maxSteps: 5000 });
    for (const nodeId of [0, 1]) await job.store.nodes.update({ jobId: 'p', nodeId, incarnation: 0 }, { status: 'succeeded' });
    const ended: JobStatus = { ...job.status, phase: 'SUCCEEDED', nodes: job.status.nodes.map((n) => ({ ...n, status: 'succeeded' as const })) };
    const progress = await readJobProgress(job.store, ended, T0 - 60_000, T0);
    expect(progress).toMatchObject({ step: 5000, maxSteps: 5000, fraction: 1 });
    expect(formatJobStatus(ended, progress)).toContain('step:         5000 of 5000');
  });

  it('shows no progress without a step target or a dataset', async () => {
    const job = await jobAt(1200, {});
    const progress = await readJobProgress(job.store, job.status, T0 - 60_000, T0);
    expect(progress).toMatchObject({ step: 1200, stepsPerSecond: 10, maxSteps: null, fraction: null, etaSeconds: null, basis: null });
    expect(formatJobStatus(job.status, progress)).not.toContain('progress:');
  });
});
