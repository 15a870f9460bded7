// Plain-text rendering for the job commands: aligned tables and the `rover status` page.
import type { JobStatus } from '../workflows/job/messages.ts';

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
export function formatJobStatus(status: JobStatus, shards?: Parameters<typeof formatShardProgress>[0]): string {
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
  const plans = (status.plans ?? []).map((p) => `plan ${p.stage} (${p.rule}): ${p.applied} — ${p.reason}`);
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
