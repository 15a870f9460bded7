// A job's training progress as the CLI shows it: the step, the step rate, and (toward the spec's
// step target, or through the dataset's shards) the fraction done and an ETA. Steps and shards are
// hot-path data, so they come from the store, not the workflow: the nodes' latest step, one
// node's recent step samples, and the shard counts. Each read is a few indexed queries, whatever
// the job's size. The arithmetic is common/trainingProgress.ts, shared with the job workflow.
import { isTerminalPhase } from '../common/phases.ts';
import { estimateProgress, RATE_WINDOW_MS, stepRate, type ProgressEstimate } from '../common/trainingProgress.ts';
import { METRIC_STEP, type ShardProgress, type Store } from '../store/index.ts';
import type { JobStatus } from '../workflows/job/messages.ts';

export interface JobProgress {
  /** Highest step any running node reported (null: none reported yet). */
  step: number | null;
  /** Steps per second over the last RATE_WINDOW_MS (null: too few samples). */
  stepsPerSecond: number | null;
  /** The spec's step target (spec.maxSteps); null: none. */
  maxSteps: number | null;
  /** 0..1 (null: unknown): step / maxSteps with a step target, else shards done (or skipped) over all epochs' shards. */
  fraction: number | null;
  /** Seconds left (null: unknown): at the step rate toward maxSteps, else at the dataset's pace since the job started. */
  etaSeconds: number | null;
  /** What fraction and etaSeconds measure: the step target wins over the dataset. */
  basis: ProgressEstimate['basis'];
  /** The dataset's shard counts, for the table of `rover status`. */
  shards: ShardProgress | null;
}

/** Reads the job's progress from an open store; `startedAt` is when the job's workflow started (ms). */
export async function readJobProgress(store: Store, status: JobStatus, startedAt: number, now = Date.now()): Promise<JobProgress> {
  // An ended job's nodes are stopped: its step is the last any of them reached.
  const ended = isTerminalPhase(status.phase);
  const nodes = await store.nodes.listByJob(status.jobId, ended ? {} : { statuses: ['running'] });
  const steps = nodes.flatMap((n) => (n.step === null || n.step === undefined ? [] : [n.step]));
  // The rate of rank 0's node (any running node else): ranks step together in data-parallel jobs.
  const rankZero = status.nodes.find((n) => n.rank === 0 && n.status === 'running') ?? status.nodes.find((n) => n.status === 'running');
  const samples = rankZero ? await store.metrics.list(status.jobId, METRIC_STEP, { nodeId: rankZero.id, since: now - RATE_WINDOW_MS }) : [];
  const shards = await store.shards.progress(status.jobId);
  const job = await store.jobs.get(status.jobId);
  const maxSteps = job?.spec?.spec?.maxSteps ?? null;
  const step = steps.length === 0 ? null : Math.max(...steps);
  const stepsPerSecond = stepRate(samples.filter((s) => s.incarnation === rankZero?.incarnation));
  const shardFraction = shards.total === 0 ? null : (shards.done + shards.poison + shards.skipped) / shards.total;
  const estimate = estimateProgress({ step, stepsPerSecond, maxSteps, shardFraction, elapsedMs: now - startedAt });
  return { step, stepsPerSecond, maxSteps, ...estimate, shards: shards.total === 0 ? null : shards };
}
