// Training progress arithmetic shared by `rover status` (cli/progress.ts), the watch activity
// (activities/job.ts) and the job workflow's current details: the step rate from step samples,
// and the fraction done and time left from the spec's step target (spec.maxSteps) or, without
// one, from the dataset's shards. Pure and deterministic: safe in workflow code.

/** Step samples older than this do not count towards the rate. */
export const RATE_WINDOW_MS = 60_000;

/** The latest training step as one read of the store saw it. */
export interface StepReading {
  /** Highest step a running node reported. */
  step: number;
  /** Steps per second of rank 0's node over the recent samples; null: too few samples yet. */
  stepsPerSecond: number | null;
  /** When it was read (store clock, ms). */
  readAt: number;
}

/** How far the job is and how long it has left; which measure was used (null: neither known). */
export interface ProgressEstimate {
  /** 0..1; null when unknown. */
  fraction: number | null;
  /** Seconds left at the current pace; null when unknown or done. */
  etaSeconds: number | null;
  /** 'steps': step / spec.maxSteps; 'dataset': shards done / all epochs' shards. */
  basis: 'steps' | 'dataset' | null;
}

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
export function elapsedEtaSeconds(fraction: number | null, elapsedMs: number): number | null {
  if (fraction === null || fraction <= 0 || fraction >= 1 || elapsedMs <= 0) return null;
  return ((elapsedMs / 1000) * (1 - fraction)) / fraction;
}

/**
 * Progress toward the step target: fraction step / maxSteps (at most 1), and (maxSteps − step)
 * / rate seconds left. The step is the current one, so after a restart that took it back to the
 * checkpoint the fraction goes back too, and the rate is the pace since the restart. No rate yet,
 * a stalled one, or a step at or past the target: no ETA.
 */
export function stepTargetProgress(step: number | null, stepsPerSecond: number | null, maxSteps: number): Omit<ProgressEstimate, 'basis'> {
  if (step === null) return { fraction: null, etaSeconds: null };
  const fraction = Math.min(1, Math.max(0, step / maxSteps));
  const left = maxSteps - step;
  const etaSeconds = left > 0 && stepsPerSecond !== null && stepsPerSecond > 0 ? left / stepsPerSecond : null;
  return { fraction, etaSeconds };
}

/**
 * The job's progress: the step target wins when the spec has one (it says where the trainer
 * stops, and steps are an even measure of work); else the dataset's shards done, with the time
 * left extrapolated from the time since the job started; else unknown.
 */
export function estimateProgress(input: {
  step: number | null;
  stepsPerSecond: number | null;
  /** spec.maxSteps; absent or null: no step target. */
  maxSteps?: number | null;
  /** Shards done (or skipped) over all epochs' shards; null: no dataset. */
  shardFraction: number | null;
  /** Since the job started (ms). */
  elapsedMs: number;
}): ProgressEstimate {
  if (input.maxSteps) return { ...stepTargetProgress(input.step, input.stepsPerSecond, input.maxSteps), basis: 'steps' };
  if (input.shardFraction !== null) {
    return { fraction: input.shardFraction, etaSeconds: elapsedEtaSeconds(input.shardFraction, input.elapsedMs), basis: 'dataset' };
  }
  return { fraction: null, etaSeconds: null, basis: null };
}

/** `45.2%`, never 100% before the work is done. */
export function formatFraction(fraction: number): string {
  return `${(Math.floor(fraction * 1000) / 10).toFixed(1)}%`;
}

/** Steps per second with three significant digits: `0.125`, `12.3`, `1234`. */
export function formatRate(stepsPerSecond: number): string {
  return stepsPerSecond >= 100 ? stepsPerSecond.toFixed(0) : stepsPerSecond.toPrecision(3);
}

/** A duration for people: `42s`, `3m05s`, `2h07m`, `3d04h`. */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}
