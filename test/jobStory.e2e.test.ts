// The job's story where users look: the Temporal Web UI (user metadata, execution status, a
// short history, the live step), typed refusals and the API's metrics. Real worker, API, agents and trainers on
// the suite's Temporal dev server; the watch deadline is the production default (1 h).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { JOB_FAILED, SCALE_REFUSED, scaleUpdate, statusQuery, type JobStatus } from '../workflows/job/messages.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { jobSpec, repoRoot } from './jobFixtures.ts';
import { parsePrometheusText, sampleSum } from './promText.ts';
import { startTestStack, type TestStack } from './stack.ts';

const run = promisify(execFile);

describe('the job story in Temporal and the metrics', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack('job story', { ROVER_WATCH_MAX_WAIT_MS: '3600000' });
    await Promise.all([stack.startWorker(), stack.startApi()]);
  });
  afterAll(async () => {
    await stack?.close();
  });

  const handleOf = (name: string) => stack.client.workflow.getHandle(`job-${name}`);
  const currentDetails = async (name: string) =>
    ((await handleOf(name).query<{ currentDetails: string }>('__temporal_workflow_metadata')).currentDetails);
  const activitySummaries = async (name: string) =>
    (await handleOf(name).fetchHistory()).events!.flatMap((e) =>
      e.activityTaskScheduledEventAttributes && e.userMetadata?.summary ? [defaultPayloadConverter.fromPayload<string>(e.userMetadata.summary)] : [],
    );
  const metrics = async () => parsePrometheusText(await (await fetch(`${stack.config.api.url}/metrics`)).text());
  const stepping = (name: string, minStep: number, also: (s: JobStatus) => boolean = () => true) =>
    waitUntil(async () => {
      const s = await handleOf(name).query(statusQuery);
      const nodes = await stack.store.nodes.listByJob(name, { statuses: ['running'] });
      return s.phase === 'RUNNING' && also(s) && nodes.length === s.targetNodes && nodes.every((n) => (n.step ?? 0) >= minStep) ? s : undefined;
    }, `job ${name} training past step ${minStep}`, 120_000, 200);

  it('describes itself in the Web UI as it moves, names why each activity runs, and keeps an idle history short', async () => {
    const name = 'story';
    const spec = jobSpec(stack.home, name, { nodes: 2, max: 3, steps: 1_000_000 });
    spec.spec.maxSteps = 1_000_000;
    const handle = await submitJob(stack.client, spec, { taskQueue: stack.config.temporal.taskQueue });
    const described = await handle.describe();
    expect(await described.staticSummary()).toBe('story · 1–3 nodes × 2 procs · local · tester');
    expect(await described.staticDetails()).toContain('python3 examples/trainer.py');

    await stepping(name, 3);
    expect(await currentDetails(name)).toMatch(/^\*\*RUNNING\*\* · world size 4 · round 1 /);
    // The first step read wakes the workflow once, so the details show it without any incident
    // (nothing else would wake it for up to ROVER_WATCH_MAX_WAIT_MS, an hour here).
    const stepLine = /^Step (\d+) of 1000000 \(\d+\.\d%\)( · [\d.]+ steps\/s)?( · ETA \S+)? · read at \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/m;
    await waitUntil(async () => stepLine.test(await currentDetails(name)), 'a step line in the current details', 30_000, 200);
    // Meanwhile the waiting watch carries the live step in its heartbeat details (the Web UI's
    // pending activity), which add no history event.
    const heartbeatStep = async () => {
      const pending = (await handleOf(name).describe()).raw.pendingActivities ?? [];
      const details = pending.flatMap((a) => a.heartbeatDetails?.payloads ?? []).map((p) => defaultPayloadConverter.fromPayload<{ step?: { step: number } }>(p));
      return details.find((d) => d.step)?.step?.step;
    };
    const live = await waitUntil(heartbeatStep, 'the watch activity\'s heartbeat details to carry the step', 60_000, 500);
    expect(live).toBeGreaterThanOrEqual(1);
    // The job row follows the workflow's phase, and so does the phase gauge.
    await waitUntil(async () => sampleSum(await metrics(), 'rover_jobs', { phase: 'RUNNING' }) === 1, 'rover_jobs{phase="RUNNING"} 1', 30_000, 200);
    expect(sampleSum(await metrics(), 'rover_jobs', { phase: 'LAUNCHING' })).toBe(0);

    const refused = await handle.executeUpdate(scaleUpdate, { args: [{ nodes: 9 }] }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    const cause = (refused as WorkflowUpdateFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause).toMatchObject({ type: SCALE_REFUSED, nonRetryable: true });
    expect(cause?.message).toMatch(/^cannot scale to 9 nodes.*max 3/);

    // Idle training: nothing the workflow acts on happens (checkpoints are held for company), so
    // the history does not grow while every trainer takes 20 more steps.
    const idleFrom = (await handle.describe()).historyLength;
    const step = Math.min(...(await stack.store.nodes.listByJob(name, { statuses: ['running'] })).map((n) => n.step ?? 0));
    await stepping(name, step + 20);
    expect((await handle.describe()).historyLength - idleFrom).toBe(0);

    const node1 = (await stack.store.nodes.listByJob(name)).find((n) => n.nodeId === 1)!;
    process.kill(-node1.pid!, 'SIGKILL');
    await stepping(name, 1, (s) => s.nodes.find((n) => n.id === 1)?.incarnation === 1);
    const details = await currentDetails(name);
    expect(details).toMatch(/\| 1 \| \d \| 1 \| running \|/);
    expect(details).toContain('1 node relaunches');
    // The live step rode in on the watch's returns (no event of its own): the step the store had,
    // toward spec.maxSteps, with when it was read.
    const shown = Number(stepLine.exec(details)?.[1]);
    expect(shown, `no step line in the current details:\n${details}`).not.toBeNaN();
    const reported = await stack.store.metrics.list(name, 'step', { limit: 100_000 });
    expect(reported.some((m) => m.value === shown), `step ${shown} was never reported`).toBe(true);
    const summaries = await activitySummaries(name);
    expect(summaries[0]).toBe('record job story, open rendezvous round 1 for 2 nodes');
    expect(summaries).toContain('launch nodes 0, 1: job start');
    expect(summaries).toContainEqual(expect.stringMatching(/^remove node 1 incarnation 0: node 1 incarnation 0 .+/));
    expect(summaries).toContainEqual(expect.stringMatching(/^relaunch node 1 → incarnation 1: node 1 incarnation 0 .+/));
    expect(summaries).toContainEqual(expect.stringMatching(/^wait for node events after #\d+/));
    expect(await handleOf(name).query(statusQuery)).toMatchObject({ warnings: [] });

    const rover = (...args: string[]) => run(process.execPath, [path.join(repoRoot, 'bin/rover.js'), ...args], { env: { ...process.env, ...stack.env } });
    await rover('stop', name, '--reason', 'story told');
    expect(await jobOutcome(handle)).toMatchObject({ phase: 'STOPPED', reason: 'story told' });
    expect((await handle.describe()).status.name).toBe('COMPLETED');
    const final = await currentDetails(name);
    expect(final).toMatch(/^\*\*STOPPED\*\*/);
    // The final details carry the job's last step, not the watch's last reading.
    const lastStep = Math.max(...(await stack.store.nodes.listByJob(name)).map((n) => n.step ?? 0));
    expect(Number(stepLine.exec(final)?.[1]), final).toBe(lastStep);
    expect(await activitySummaries(name)).toContain('finish the job STOPPED: story told; tear its nodes down');
    // A stopped node is stopped, not lost afterwards.
    const events = await stack.store.nodeEvents.list(name, { kinds: ['node_stopped', 'node_lost'] });
    const stopped = new Set<string>();
    for (const e of events) {
      const key = `${e.nodeId}/${e.incarnation}`;
      if (e.kind === 'node_stopped') stopped.add(key);
      else expect(stopped.has(key), `node_lost of ${key} after its node_stopped`).toBe(false);
    }
    // The ended job's per-job series are gone; it counts under its final phase.
    const after = await metrics();
    expect(after.samples.filter((s) => s.labels.job === name)).toEqual([]);
    expect(sampleSum(after, 'rover_jobs', { phase: 'STOPPED' })).toBe(1);
  });

  it('ends a FAILED job as a Failed workflow whose failure is JobFailed with the reason and final status', async () => {
    const name = 'story-fails';
    // One process: with two, its peer's own exit can reach the agent first and name the failure.
    const spec = jobSpec(stack.home, name, { nodes: 1, nproc: 1, extraArgs: ['--exit-at-step', '1', '--exit-code', '3'], maxProcessRestarts: 0, maxNodeRelaunches: 0 });
    const handle = await submitJob(stack.client, spec, { taskQueue: stack.config.temporal.taskQueue });
    const failure = await handle.result().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause).toMatchObject({ type: JOB_FAILED, nonRetryable: true });
    expect(cause.message).toMatch(/node 0 incarnation 0 failed with exit code 3/);
    const status = cause.details?.[0] as JobStatus;
    expect(status).toMatchObject({ phase: 'FAILED', reason: cause.message });
    expect((await handle.describe()).status.name).toBe('FAILED');
    expect(await currentDetails(name)).toMatch(/^\*\*FAILED\*\*/);
  });
});
