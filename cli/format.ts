// Plain-text rendering for the job commands: aligned tables, the `rover status` page and the
// one-line progress of `submit --wait`, `up` and `watch`.
import type { JobStatus } from '../workflows/job/messages.ts';
import { formatEta, formatFraction, formatRate } from '../common/trainingProgress.ts';
import type { JobProgress } from './progress.ts';

type Cell = string | number | null | undefined;

/** Empty cells (null/undefined/'') show as "-" so columns never look shifted. */
function cellText(cell: Cell): string {
  return cell === null || cell === undefined || cell === '' ? '-' : String(cell);
}

/** Left-aligned columns separated by two spaces, header first, no trailing blanks. */
export function formatTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const texts = [headers.map(String), ...rows.map((row) => headers.map((_, i) => cellText(row[i])))];
  const widths = headers.map((_, i) => Math.max(...texts.map((r) => r[i]!.length)));
  return texts.map((r) => r.map((t, i) => t.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** UTC, to the second: `2025-11-25 13:47:02Z`. */
export function formatTime(date: Date | undefined): string {
  if (!date || Number.isNaN(date.getTime())) return '-';
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/**
 * The one-line progress: `RUNNING · world 8 · round 1 · step 1200 · 12.3 steps/s · 45.2% · ETA 3m05s`
 * (`step 1200/5000` with a step target), leaving out what is not known yet.
 */
export function formatProgressLine(
  status: Pick<JobStatus, 'phase' | 'worldSize' | 'round'>,
  progress?: Pick<JobProgress, 'step' | 'stepsPerSecond' | 'fraction' | 'etaSeconds'> & { maxSteps?: number | null },
): string {
  return [
    status.phase,
    `world ${status.worldSize}`,
    `round ${status.round}`,
    ...(progress?.step != null ? [`step ${progress.step}${progress.maxSteps ? `/${progress.maxSteps}` : ''}`] : []),
    ...(progress?.stepsPerSecond != null ? [`${formatRate(progress.stepsPerSecond)} steps/s`] : []),
    ...(progress?.fraction != null ? [formatFraction(progress.fraction)] : []),
    ...(progress?.etaSeconds != null ? [`ETA ${formatEta(progress.etaSeconds)}`] : []),
  ].join(' · ');
}

/** A byte count in binary units: `512 B`, `128 MiB`, `1.5 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : Number(value.toFixed(1))} ${units[unit]}`;
}

/**
 * Plan texts carry memory as raw byte counts (`memory 134217728 → 268435456 bytes`, `= 268435456
 * bytes`); people read `memory 128 MiB → 256 MiB`.
 */
export function withReadableBytes(text: string): string {
  return text
    .replace(/\b(\d+) → (\d+) bytes\b/g, (_, from: string, to: string) => `${formatBytes(Number(from))} → ${formatBytes(Number(to))}`)
    .replace(/\b(\d+) bytes\b/g, (_, n: string) => formatBytes(Number(n)));
}

/** `key: value` lines with the values aligned. */
function formatFields(fields: readonly (readonly [string, Cell])[]): string {
  const width = Math.max(...fields.map(([k]) => k.length)) + 1;
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width)} ${cellText(v)}`).join('\n');
}

/** Shard counts as `rover status` shows them (the store's ShardProgress). */
export interface ShardCountsView {
  total: number;
  done: number;
  inFlight: number;
  queued: number;
  poison: number;
  skipped: number;
}

/** The dataset table: one row per epoch and a total, or nothing without a dataset. */
export function formatShardProgress(progress: ShardCountsView & { epochs: (ShardCountsView & { epoch: number })[] }): string {
  if (progress.total === 0) return '';
  const row = (name: Cell, c: ShardCountsView) => [name, c.total, c.done, c.inFlight, c.queued, c.poison + c.skipped];
  return formatTable(
    ['EPOCH', 'SHARDS', 'DONE', 'IN FLIGHT', 'QUEUED', 'POISON/SKIPPED'],
    [...progress.epochs.map((e) => row(e.epoch, e)), row('all', progress)],
  );
}

/** The `rover status` page: a header of job-wide figures, then one table row per node. */
export function formatJobStatus(status: JobStatus, progress?: JobProgress): string {
  const shards = progress?.shards ?? undefined;
  const header = formatFields([
    ['job', status.jobId],
    ['workflow', status.workflowId],
    ['phase', status.phase],
    ['round', status.round],
    ['world size', status.worldSize],
    ['target nodes', status.targetNodes],
    ['relaunches', status.nodeRelaunches],
    ['restarts', status.processRestarts],
    ['reason', status.reason],
    ['checkpoint', status.checkpointStep ? `step ${status.checkpointStep}` : null],
    ['epochs done', status.epochsDone ?? 0],
    ['step', progress?.step == null ? null : `${progress.step}${progress.maxSteps ? ` of ${progress.maxSteps}` : ''}`],
    ['steps/s', progress?.stepsPerSecond == null ? null : formatRate(progress.stepsPerSecond)],
    // Only with a step target (step / spec.maxSteps, the time left at the step rate) or a dataset
    // (shards done over all epochs' shards, the time left at the pace since the job started).
    ...(progress?.fraction == null ? [] : ([['progress', formatFraction(progress.fraction)], ['ETA', progress.etaSeconds == null ? null : formatEta(progress.etaSeconds)]] as const)),
  ]);
  const checked = status.nodes.some((n) => n.check);
  const nodes =
    status.nodes.length === 0
      ? 'no nodes yet'
      : formatTable(
          // CHECK (the pre-flight node check verdict) only for jobs that ran it.
          ['NODE', 'RANK', 'INCARNATION', 'STATUS', 'RESTARTS', 'PID', 'EXIT', ...(checked ? ['CHECK'] : []), 'REASON'],
          [...status.nodes]
            .sort((a, b) => a.id - b.id)
            .map((n) => [n.id, n.rank, n.incarnation, n.status, n.restarts, n.pid, n.exitCode, ...(checked ? [n.check ?? null] : []), n.reason ?? (n.pending ? `pending: ${n.pending}` : null)]),
        );
  const lastErrors = [...status.nodes].sort((a, b) => a.id - b.id).flatMap((n) => (n.lastError ? [`node ${n.id} last failure: ${n.lastError}`] : []));
  const warnings = status.warnings.map((w) => `warning: ${w}`);
  const data = shards ? formatShardProgress(shards) : '';
  // Brain plans the job applied (or received), each with its rule and reason.
  const plans = (status.plans ?? []).map((p) => withReadableBytes(`plan ${p.stage} (${p.rule}): ${p.applied} — ${p.reason}`));
  return [header, '', nodes, ...lastErrors, ...(data ? ['', data] : []), ...(plans.length > 0 ? ['', ...plans] : []), ...(warnings.length > 0 ? ['', ...warnings] : [])].join('\n');
}

/** One row of `rover list`. */
export interface JobListRow {
  job: string;
  workflowId: string;
  /** RoverJobState search attribute; undefined until the workflow sets it. */
  state: string | undefined;
  worldSize: number | undefined;
  user: string | undefined;
  startTime: Date | undefined;
  /** Temporal's execution status: RUNNING, COMPLETED, TERMINATED, … */
  temporalStatus: string;
}

export function formatJobList(rows: readonly JobListRow[]): string {
  if (rows.length === 0) return 'no jobs';
  return formatTable(
    ['JOB', 'STATE', 'WORLD', 'USER', 'STARTED', 'TEMPORAL'],
    rows.map((r) => [r.job, r.state, r.worldSize, r.user, formatTime(r.startTime), r.temporalStatus]),
  );
}
