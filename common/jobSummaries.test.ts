// The job's story lines for the Temporal Web UI: summaries fit their limits and say why.
import { describe, expect, it } from 'vitest';
import { initialJobState, type NodeRecord } from './jobState.ts';
import { jobCurrentDetails, jobStaticDetails, jobStaticSummary, launchSummary, removeSummary } from './jobSummaries.ts';
import { parseJobSpec } from './spec/index.ts';

function spec(nodes: { min: number; max: number }, nproc = 8) {
  const parsed = parseJobSpec({
    metadata: { name: 'mnist', user: 'ada' },
    spec: { nodes, nprocPerNode: nproc, entrypoint: { command: 'python3', args: ['train.py', '--lr', '0.1'] } },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec;
}

const node = (id: number, incarnation: number, reason: string | null = null): NodeRecord => ({
  id, incarnation, status: 'failed', rank: null, restarts: 0, pid: null, exitCode: null, reason,
});

describe('job summaries', () => {
  it('names the job, its node range, processes, backend and user in one short line', () => {
    expect(jobStaticSummary(spec({ min: 2, max: 4 }))).toBe('mnist · 2–4 nodes × 8 procs · local · ada');
    expect(jobStaticSummary(spec({ min: 1, max: 1 }, 1))).toBe('mnist · 1 node × 1 proc · local · ada');
    const long = spec({ min: 1, max: 1 });
    long.metadata.user = 'u'.repeat(500);
    expect(Buffer.byteLength(jobStaticSummary(long))).toBeLessThanOrEqual(200);
  });

  it('gives the command and budgets as static details', () => {
    const details = jobStaticDetails(spec({ min: 2, max: 4 }), '/jobs/mnist.yaml');
    expect(details).toContain('python3 train.py --lr 0.1');
    expect(details).toContain('| spec file | /jobs/mnist.yaml |');
    expect(details).toMatch(/\| restart budgets \| \d+ process restarts per node, \d+ node relaunches \|/);
  });

  it('shows phase, world, checkpoint, each node with its last failure, and recent warnings', () => {
    const data = initialJobState(2);
    data.phase = 'RUNNING';
    data.round = 3;
    data.checkpointStep = 1200;
    data.checkpointRate = { at: 0, stepsPerSecond: 3.14159 };
    data.nodes = [{ ...node(0, 0), status: 'running', rank: 0 }, { ...node(1, 2), status: 'running', rank: 1, lastError: 'CUDA error | out of memory' }];
    data.warnings = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];
    const md = jobCurrentDetails(data, 16);
    expect(md.split('\n')[0]).toBe('**RUNNING** · world size 16 · round 3 · 2 target nodes · checkpoint at step 1200 · 3.14 steps/s');
    expect(md).toContain('| 1 | 1 | 2 | running | CUDA error \\| out of memory |');
    expect(md).toContain('- w6');
    expect(md).not.toContain('- w1');
  });

  it('shows the latest step read, its rate, the progress toward spec.maxSteps and the ETA, with when it was read', () => {
    const data = initialJobState(2);
    data.phase = 'RUNNING';
    data.checkpointRate = { at: 0, stepsPerSecond: 3.14159 };
    data.progress = { step: 1200, stepsPerSecond: 10, readAt: Date.UTC(2026, 10, 30, 9, 12, 3) };
    const md = jobCurrentDetails(data, 4, 5000);
    const lines = md.split('\n');
    // One rate: the live one, not the one between checkpoints.
    expect(lines[0]).toBe('**RUNNING** · world size 4 · round 0 · 2 target nodes · no checkpoint yet');
    expect(lines[2]).toBe('Step 1200 of 5000 (24.0%) · 10.0 steps/s · ETA 6m20s · read at 2026-11-30 09:12:03Z');
  });

  it('shows the step without a target, and before the rate is known, leaving out what it cannot say', () => {
    const data = initialJobState(1);
    data.progress = { step: 7, stepsPerSecond: null, readAt: Date.UTC(2026, 10, 30, 9, 0, 0) };
    expect(jobCurrentDetails(data, 1).split('\n')[2]).toBe('Step 7 · read at 2026-11-30 09:00:00Z');
    expect(jobCurrentDetails(data, 1, 10).split('\n')[2]).toBe('Step 7 of 10 (70.0%) · read at 2026-11-30 09:00:00Z');
    data.progress = { step: 12, stepsPerSecond: 2, readAt: Date.UTC(2026, 10, 30, 9, 0, 0) };
    expect(jobCurrentDetails(data, 1, 10).split('\n')[2]).toBe('Step 12 of 10 (100.0%) · 2.00 steps/s · read at 2026-11-30 09:00:00Z');
  });

  it('has no step line before any step was read', () => {
    expect(jobCurrentDetails(initialJobState(1), 1, 10)).not.toMatch(/Step \d/);
  });

  it('says which node is relaunched and why, and what a scale removes', () => {
    const before = [node(3, 1, 'node 3 incarnation 1 failed with exit code 137 (OOM-killed)')];
    expect(launchSummary([{ id: 3, incarnation: 2 }], { before })).toBe('relaunch node 3 → incarnation 2: node 3 incarnation 1 failed with exit code 137 (OOM-killed)');
    expect(removeSummary([{ id: 3, incarnation: 1 }], { before })).toBe('remove node 3 incarnation 1: node 3 incarnation 1 failed with exit code 137 (OOM-killed)');
    expect(removeSummary([{ id: 4, incarnation: 0 }, { id: 5, incarnation: 0 }], { why: 'scale 6 → 4' })).toBe('remove nodes 4, 5: scale 6 → 4');
    expect(launchSummary([{ id: 2, incarnation: 0 }, { id: 3, incarnation: 0 }], { why: 'scale 2 → 4' })).toBe('launch nodes 2, 3: scale 2 → 4');
    expect(launchSummary([{ id: 0, incarnation: 0 }], { why: 'x'.repeat(500) }).length).toBeLessThanOrEqual(200);
  });
});
