// The pure half of `rover logs` on the kubernetes backend (cli/kubeLogs.ts): which pod is which
// node incarnation of which run, the header line over each, the kubelet's timestamped lines and
// where a follow stream picks up after what was printed, and a failed API call in words.
import type { V1Pod } from '@kubernetes/client-node';
import { statusOf } from '../cluster/kubernetes/kubeClient.ts';
import { AGENT_CONTAINER, LABEL_INCARNATION, LABEL_NODE, LABEL_RUN } from '../cluster/kubernetes/manifests.ts';

/** For pods without a run label: pod times have whole seconds, and the apiserver's clock may run a little behind Rover's. */
export const RUN_CLOCK_SLACK_MS = 2000;

/** One node incarnation: one pod. */
export interface PodRef {
  name: string;
  nodeId: number;
  incarnation: number;
  /** When the pod started (status.startTime), else when it was created (ms). */
  launchedAt: number;
  /** Of the job's current run (its run label says so; unlabelled: created after the run began). Others are left over from earlier runs. */
  current: boolean;
  /** The run it belongs to (its creation time, ms) when its label says. */
  run: number | undefined;
  /** The agent container has ended: its log is complete. */
  ended: boolean;
  /** Not running yet (unscheduled, pulling its image): no log yet. */
  pending: boolean;
}

const ms = (t: Date | string | undefined): number | undefined => (t === undefined ? undefined : new Date(t).getTime());

/** The job's pods as node incarnations, by node then incarnation; pods without Rover's labels are left out. */
export function podRefs(pods: V1Pod[], runStart: number): PodRef[] {
  const refs: PodRef[] = [];
  for (const pod of pods) {
    const labels = pod.metadata?.labels ?? {};
    const nodeId = Number(labels[LABEL_NODE]);
    const incarnation = Number(labels[LABEL_INCARNATION]);
    const name = pod.metadata?.name;
    if (!name || !Number.isInteger(nodeId) || !Number.isInteger(incarnation) || labels[LABEL_NODE] === undefined) continue;
    const created = ms(pod.metadata?.creationTimestamp) ?? 0;
    const agent = pod.status?.containerStatuses?.find((c) => c.name === AGENT_CONTAINER);
    refs.push({
      name,
      nodeId,
      incarnation,
      launchedAt: ms(pod.status?.startTime) ?? created,
      current: labels[LABEL_RUN] !== undefined ? labels[LABEL_RUN] === String(runStart) : created + RUN_CLOCK_SLACK_MS >= runStart,
      run: /^\d+$/.test(labels[LABEL_RUN] ?? '') ? Number(labels[LABEL_RUN]) : undefined,
      ended: agent?.state?.terminated !== undefined || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed',
      pending: (pod.status?.phase ?? 'Pending') === 'Pending',
    });
  }
  return refs.sort((a, b) => a.nodeId - b.nodeId || a.incarnation - b.incarnation);
}

/**
 * The line over an incarnation's output, as the local backend writes it (cluster/local
 * localBackend.ts logHeader) plus the pod's name; `run` undefined: an earlier run, time unknown.
 */
export function podHeader(ref: PodRef, run: number | undefined): string {
  const runText = run === undefined ? 'earlier' : new Date(run).toISOString();
  return `=== rover run ${runText} · node ${ref.nodeId} · incarnation ${ref.incarnation} · launched ${new Date(ref.launchedAt).toISOString()} · pod ${ref.name} ===`;
}

/** A kubelet time (timestamps=true): whole seconds since the epoch and nanoseconds, to compare exactly. */
export type Stamp = readonly [seconds: number, nanos: number];

export interface TimedLine {
  /** undefined when the line carries no time (not asked for, or not a kubelet line). */
  at: Stamp | undefined;
  text: string;
}

const STAMPED = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) (.*)$/s;

/** Splits the kubelet's `<RFC3339Nano time> <text>` into the time and the text. */
export function parseTimedLine(line: string): TimedLine {
  const m = STAMPED.exec(line);
  if (!m) return { at: undefined, text: line };
  const seconds = Date.parse(`${m[1]}${m[3]}`) / 1000;
  if (Number.isNaN(seconds)) return { at: undefined, text: line };
  return { at: [seconds, Number((m[2] ?? '').padEnd(9, '0'))], text: m[4]! };
}

/** The lines of a pod log read with timestamps=true (a last line without its newline counts). */
export function splitTimedLog(body: string): TimedLine[] {
  if (body === '') return [];
  const lines = (body.endsWith('\n') ? body.slice(0, -1) : body).split('\n');
  return lines.map(parseTimedLine);
}

export function compareStamps(a: Stamp, b: Stamp): number {
  return a[0] - b[0] || a[1] - b[1];
}

/** Where a pod's log stood when it was read: its last line's time and how many lines carry that time. */
export interface LogMark {
  at: Stamp;
  count: number;
}

export function markOf(lines: readonly TimedLine[]): LogMark | undefined {
  const at = lines.at(-1)?.at;
  if (!at) return undefined;
  let count = 0;
  for (let i = lines.length - 1; i >= 0 && lines[i]!.at && compareStamps(lines[i]!.at!, at) === 0; i--) count++;
  return { at, count };
}

/** The sinceTime (RFC3339, whole seconds) a follow stream starts at to include every line after `mark`. */
export function sinceTimeOf(mark: LogMark): string {
  return new Date(mark.at[0] * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

/**
 * Drops what a follow stream repeats of lines already read: lines before the mark's time, and
 * the first `count` lines at that time (a runtime stamps every line of one write alike).
 */
export class ResumeAfter {
  private skipAtMark: number;

  constructor(private readonly mark: LogMark | undefined) {
    this.skipAtMark = mark?.count ?? 0;
  }

  accept(line: TimedLine): boolean {
    if (!this.mark || !line.at) return true;
    const order = compareStamps(line.at, this.mark.at);
    if (order < 0) return false;
    if (order === 0 && this.skipAtMark > 0) {
      this.skipAtMark--;
      return false;
    }
    return true;
  }
}

/** The message of a Kubernetes Status body, when the error carries one. */
function statusMessage(err: unknown): string | undefined {
  const body = (err as { body?: unknown } | null)?.body;
  if (typeof body !== 'string') return undefined;
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    return typeof parsed.message === 'string' ? parsed.message : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A failed call of `what` ("list pods in namespace default") in one line, without the client's
 * dump of headers: refused (RBAC), not authenticated, unreachable, or the apiserver's message.
 */
export function kubeFailure(err: unknown, what: string, server: string): string {
  const code = statusOf(err);
  const message = statusMessage(err);
  if (code === 403) {
    return `the Kubernetes API at ${server} refused to ${what} (403 Forbidden${message ? `: ${message}` : ''}); rover logs needs get and list on pods and get on pods/log in the job's namespace, as deploy/kubernetes/rbac-worker.yaml grants the rover-worker service account`;
  }
  if (code === 401) return `the Kubernetes API at ${server} did not accept the kubeconfig's credentials (401 Unauthorized) to ${what}`;
  if (code === undefined) {
    const cause = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return `cannot reach the Kubernetes API server at ${server} to ${what}: ${cause}`;
  }
  return `the Kubernetes API at ${server} answered ${code} to ${what}${message ? `: ${message}` : ''}`;
}

/** The message a per-pod failure (container not started, pod gone) is reported with. */
export function podLogProblem(err: unknown): string {
  return statusMessage(err) ?? (err instanceof Error ? err.message.split('\n')[0]! : String(err));
}
