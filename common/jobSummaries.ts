// What a job tells the Temporal Web UI and CLI about itself (Temporal's user metadata): a one-line
// static summary and a spec excerpt set at submit, Markdown current details the workflow keeps up
// to date, and a one-line summary per activity call saying what it does and why.
// Limits (Temporal docs, "Enriching the user interface"): summaries are single-line; the static
// summary is at most 200 bytes and the static details at most 20 KB.
import type { NodeIdentity } from './jobActivities.ts';
import type { JobStateData, NodeRecord } from './jobState.ts';
import type { JobSpec } from './spec/index.ts';
import { formatEta, formatFraction, formatRate, stepTargetProgress, type StepReading } from './trainingProgress.ts';

/** Longest activity summary we write, in characters: a line in the event history, not a report. */
const ACTIVITY_SUMMARY_CHARS = 200;
/** Longest static summary in characters (Temporal's limit is 200 bytes; names are mostly ASCII). */
const STATIC_SUMMARY_CHARS = 190;
/** How many recent warnings the current details show (the status query has them all). */
const DETAILS_WARNINGS = 5;

/** One line, at most `max` characters: the reasons we quote can be stderr lines or tracebacks. */
export function oneLine(text: string, max = ACTIVITY_SUMMARY_CHARS): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

function nodeRange(spec: JobSpec): string {
  const { min, max } = spec.spec.nodes;
  return min === max ? `${min} node${min === 1 ? '' : 's'}` : `${min}–${max} nodes`;
}

/** `mnist · 2–4 nodes × 8 procs · local · ada`: the job's line in the Web UI's workflow list. */
export function jobStaticSummary(spec: JobSpec): string {
  const procs = spec.spec.nprocPerNode;
  return oneLine(`${spec.metadata.name} · ${nodeRange(spec)} × ${procs} proc${procs === 1 ? '' : 's'} · ${spec.spec.backend} · ${spec.metadata.user}`, STATIC_SUMMARY_CHARS);
}

function bytes(value: unknown): string {
  if (typeof value !== 'number') return String(value);
  const gib = value / 2 ** 30;
  return gib >= 1 ? `${Number(gib.toFixed(1))} GiB` : `${Math.round(value / 2 ** 20)} MiB`;
}

/** A Markdown excerpt of the spec (what runs, where, with which budgets), for the Web UI. */
export function jobStaticDetails(spec: JobSpec, specFile?: string): string {
  const s = spec.spec;
  const command = [s.entrypoint.command, ...(s.entrypoint.args ?? [])].join(' ');
  const rows: [string, string][] = [
    ['nodes', `${nodeRange(spec)}, ${s.nodes.initial ?? s.nodes.max} at start${s.nodes.unit > 1 ? `, in units of ${s.nodes.unit}` : ''}`],
    ['processes per node', String(s.nprocPerNode)],
    ['backend', s.backend],
    ['resources per node', `${s.resources.cpu} CPU, ${bytes(s.resources.memory)}${s.resources.gpu ? `, ${s.resources.gpu} GPU` : ''}`],
    ['restart budgets', `${s.faultTolerance.maxProcessRestarts} process restarts per node, ${s.faultTolerance.maxNodeRelaunches} node relaunches`],
    ...(s.maxSteps ? [['step target', String(s.maxSteps)] as [string, string]] : []),
    ['checkpoints', s.checkpoint.dir ?? 'none'],
    ['user', `${spec.metadata.user}${spec.metadata.group ? ` (${spec.metadata.group})` : ''}`],
    ...(specFile ? [['spec file', specFile] as [string, string]] : []),
  ];
  const table = rows.map(([k, v]) => `| ${k} | ${cell(v)} |`).join('\n');
  return `**${spec.metadata.name}**\n\n\`\`\`\n${command.slice(0, 2000)}\n\`\`\`\n\n| field | value |\n|---|---|\n${table}\n`;
}

/** A Markdown table cell: one line, pipes escaped. */
function cell(text: string | number | null | undefined): string {
  if (text === null || text === undefined || text === '') return '—';
  return oneLine(String(text), 120).replace(/\|/g, '\\|');
}

/** UTC to the second, `2026-11-30 09:12:03Z`: when a step was read. */
function utc(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/**
 * `Step 1200 of 5000 (24.0%) · 12.3 steps/s · ETA 5m08s · read at 2026-11-30 09:12:03Z`: the
 * latest step the watch activity read, the rate, and toward spec.maxSteps the progress and time
 * left as of that reading (it is as old as the workflow's last wake-up, so it says when).
 */
export function stepLine(reading: StepReading, maxSteps?: number): string {
  const target = maxSteps ? stepTargetProgress(reading.step, reading.stepsPerSecond, maxSteps) : undefined;
  return [
    `Step ${reading.step}${maxSteps ? ` of ${maxSteps}` : ''}${target?.fraction != null ? ` (${formatFraction(target.fraction)})` : ''}`,
    ...(reading.stepsPerSecond !== null ? [`${formatRate(reading.stepsPerSecond)} steps/s`] : []),
    ...(target?.etaSeconds != null ? [`ETA ${formatEta(target.etaSeconds)}`] : []),
    `read at ${utc(reading.readAt)}`,
  ].join(' · ');
}

/**
 * The workflow's current details (Markdown): phase, world size, round, committed checkpoint, the
 * latest step with its rate (and progress and ETA toward spec.maxSteps) as last read, a node table
 * with incarnation, status and last failure, and the recent warnings. `worldSize` is processes in
 * the current world (JobState.worldSize()).
 */
export function jobCurrentDetails(data: JobStateData, worldSize: number, maxSteps?: number): string {
  const liveRate = data.progress?.stepsPerSecond != null;
  const facts = [
    `**${data.phase}**`,
    `world size ${worldSize}`,
    `round ${data.round}`,
    `${data.targetNodes} target nodes`,
    data.checkpointStep ? `checkpoint at step ${data.checkpointStep}` : 'no checkpoint yet',
    // Between the last two checkpoints, when the step line below has no rate of its own.
    ...(!liveRate && data.checkpointRate?.stepsPerSecond !== undefined ? [`${Number(data.checkpointRate.stepsPerSecond.toPrecision(3))} steps/s`] : []),
    ...(data.epochsDone ? [`${data.epochsDone} epochs done`] : []),
    ...(data.nodeRelaunches ? [`${data.nodeRelaunches} node relaunches`] : []),
    ...(data.processRestarts ? [`${data.processRestarts} process restarts`] : []),
  ];
  const lines = [facts.join(' · ')];
  if (data.progress) lines.push('', stepLine(data.progress, maxSteps));
  if (data.reason) lines.push('', `Reason: ${oneLine(data.reason, 1000)}`);
  lines.push('', '| node | rank | incarnation | status | last failure |', '|---|---|---|---|---|');
  for (const n of data.nodes) lines.push(`| ${n.id} | ${cell(n.rank)} | ${n.incarnation} | ${n.status} | ${cell(n.lastError ?? n.reason)} |`);
  const warnings = data.warnings.slice(-DETAILS_WARNINGS);
  if (warnings.length > 0) lines.push('', '**Recent warnings**', '', ...warnings.map((w) => `- ${oneLine(w)}`));
  return `${lines.join('\n')}\n`;
}

/** "node 3", "nodes 4, 5". */
export function nodeList(ids: number[]): string {
  return `node${ids.length === 1 ? '' : 's'} ${ids.join(', ')}`;
}

/** What the workflow knows when it performs a batch of actions, to say why in their summaries. */
export interface ActionContext {
  /** The command behind the batch, e.g. "scale 6 → 4"; absent: the node records say. */
  why?: string;
  /** The node records before the events were applied: a relaunched incarnation's reason is there. */
  before?: readonly NodeRecord[];
}

function failureOf(node: NodeIdentity, ctx: ActionContext): string | undefined {
  const record = ctx.before?.find((n) => n.id === node.id && n.incarnation === node.incarnation);
  return record?.reason ?? record?.lastError ?? undefined;
}

/** "remove nodes 4, 5: scale 6 → 4", "remove node 3 incarnation 1: exit code 137 (OOM-killed)". */
export function removeSummary(nodes: NodeIdentity[], ctx: ActionContext): string {
  if (ctx.why) return oneLine(`remove ${nodeList(nodes.map((n) => n.id))}: ${ctx.why}`);
  const reasons = nodes.map((n) => failureOf(n, ctx)).filter((r): r is string => r !== undefined);
  const which = nodes.map((n) => `${n.id} incarnation ${n.incarnation}`).join(', ');
  return oneLine(`remove node${nodes.length === 1 ? '' : 's'} ${which}${reasons.length ? `: ${reasons.join('; ')}` : ''}`);
}

/** "relaunch node 3 → incarnation 2: exit code 137 (OOM-killed)", "launch nodes 2, 3: scale 2 → 4". */
export function launchSummary(nodes: NodeIdentity[], ctx: ActionContext): string {
  const relaunches = nodes.filter((n) => n.incarnation > 0);
  if (relaunches.length === 1 && nodes.length === 1) {
    const node = relaunches[0]!;
    const why = ctx.why ?? failureOf({ id: node.id, incarnation: node.incarnation - 1 }, ctx);
    return oneLine(`relaunch node ${node.id} → incarnation ${node.incarnation}${why ? `: ${why}` : ''}`);
  }
  return oneLine(`launch ${nodeList(nodes.map((n) => n.id))}${ctx.why ? `: ${ctx.why}` : ''}`);
}
