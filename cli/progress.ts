// A job's training progress as the CLI shows it: the step, the step rate, and (when the dataset
// size is known) the fraction done and an ETA. Steps and shards are hot-path data, so they come
// from the store, not the workflow: the nodes' latest step, one node's recent step samples, and
// the shard counts. Each read is a few indexed queries, whatever the job's size.
import { METRIC_STEP, type ShardProgress, type Store } from '../store/index.ts';
import type { JobStatus } from '../workflows/job/messages.ts';

export interface JobProgress {
  /** Highest step any running node reported (null: none reported yet). */
  step: number | null;
  /** Steps per second over the last RATE_WINDOW_MS (null: too few samples). */
  stepsPerSecond: number | null;
  /** Shards done (or skipped) over all epochs' shards, 0..1; null without a dataset. */
  fraction: number | null;
  /** Seconds left at the pace so far (null: unknown). */
  etaSeconds: number | null;
  /** The dataset's shard counts, for the table of `rover status`. */
  shards: ShardProgress | null;
}

/** Step samples older than this do not count towards the rate. */
export const RATE_WINDOW_MS = 60_000;

/**
 * Steps per second from one node's step samples (time in ms, oldest first): the slope between
 * the first and last sample after the last restart (a step that went down). Null with fewer
 * than two samples or no time between them.
 */
export function stepRate(samples: readonly { value: number; createdAt: number }[]): number | null {
  let start = 0;
  for (let i = 1; i < samples.length; i++) if (samples[i]!.value < samples[i - 1]!.value) start = i;
  const first = samples[start];
  const last = samples[samples.length - 1];
  if (!first || !last || last.createdAt <= first.createdAt) return null;
  return ((last.value - first.value) * 1000) / (last.createdAt - first.createdAt);
}

/**
 * Seconds left when `fraction` of the work took `elapsedMs`, assuming the same pace: the
 * standard linear estimate. Null before any progress or once done.
 */
export function etaSeconds(fraction: number | null, elapsedMs: number): number | null {
  if (fraction === null || fraction <= 0 || fraction >= 1 || elapsedMs <= 0) return null;
  return ((elapsedMs / 1000) * (1 - fraction)) / fraction;
}

/** Reads the job's progress from an open store; `startedAt` is when the job's workflow started (ms). */
export async function readJobProgress(store: Store, status: JobStatus, startedAt: number, now = Date.now()): Promise<JobProgress> {
  const running = await store.nodes.listByJob(status.jobId, { statuses: ['running'] });
  const steps = running.flatMap((n) => (n.step === null || n.step === undefined ? [] : [n.step]));
  // The rate of rank 0's node (any running node else): ranks step together in data-parallel jobs.
  const rankZero = status.nodes.find((n) => n.rank === 0 && n.status === 'running') ?? status.nodes.find((n) => n.status === 'running');
  const samples = rankZero ? await store.metrics.list(status.jobId, METRIC_STEP, { nodeId: rankZero.id, since: now - RATE_WINDOW_MS }) : [];
  const shards = await store.shards.progress(status.jobId);
  const fraction = shards.total === 0 ? null : (shards.done + shards.poison + shards.skipped) / shards.total;
  return {
    step: steps.length === 0 ? null : Math.max(...steps),
    stepsPerSecond: stepRate(samples.filter((s) => s.incarnation === rankZero?.incarnation)),
    fraction,
    etaSeconds: etaSeconds(fraction, now - startedAt),
    shards: shards.total === 0 ? null : shards,
  };
}
