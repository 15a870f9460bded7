// Straggler detection while training. Synchronous all-reduce makes every node step at the slowest
// node's pace, so the signal is the trainer's own compute time of a step (`compute=` on
// ROVER_STEP, carried as heartbeat.computeSeconds). Per node incarnation, a sliding window of those
// samples (one per step) lives on its node row, which its heartbeat writes anyway; so any API
// replica sees every window. Judging the job (detectStragglers: a node whose window median stays
// above STRAGGLER_FACTOR × the job's median over a full window, not one slow step) reads every
// running node, so it runs at most once per job per heartbeat interval: the heartbeat that wins a
// compare-and-set on jobs.straggler_checked_at judges. A straggler gets one straggler_detected
// event per incarnation (nodes.straggler_at, also set by compare-and-set).
import { detectStragglers, median, STRAGGLER_FACTOR } from '../common/diagnosisNodeCheck.ts';
import type { Job, Node, Store } from '../store/index.ts';

/** Samples per node's window; also the minimum before a node is judged. */
export const STRAGGLER_WINDOW = 8;
/** A node whose step has not moved for this long drops out of the job's median (stopped, removed). */
export const STRAGGLER_STALE_MS = 60_000;

export interface StragglerFinding {
  node: number;
  incarnation: number;
  seconds: number;
  medianSeconds: number;
}

/**
 * The node's window after a heartbeat: `computeSeconds` appended when the heartbeat reports a new
 * step (a heartbeat repeats the latest step's figure until the next one), the oldest dropped past
 * STRAGGLER_WINDOW. Undefined when the window does not change.
 */
export function nextComputeWindow(node: Pick<Node, 'step' | 'computeWindow'>, step: number | null, computeSeconds: number | undefined): number[] | undefined {
  if (computeSeconds === undefined || (step !== null && step === node.step)) return undefined;
  return [...node.computeWindow, computeSeconds].slice(-STRAGGLER_WINDOW);
}

/**
 * The job's new stragglers among its running nodes at `now`: a full window above the factor ×
 * the job's median, not reported before, step moved within STRAGGLER_STALE_MS. Pure.
 */
export function findStragglers(running: Pick<Node, 'nodeId' | 'incarnation' | 'computeWindow' | 'stepAt' | 'lastHeartbeatAt' | 'stragglerAt'>[], now: number): StragglerFinding[] {
  const fresh = running.filter((n) => now - (n.stepAt ?? n.lastHeartbeatAt ?? 0) <= STRAGGLER_STALE_MS);
  const windows = fresh.map((n) => ({ node: n.nodeId, ms: n.computeWindow }));
  const slow = new Set(detectStragglers(windows, STRAGGLER_FACTOR, STRAGGLER_WINDOW));
  const full = windows.filter((w) => w.ms.length >= STRAGGLER_WINDOW);
  const jobMedian = median(full.map((w) => median(w.ms)!));
  return fresh
    .filter((n) => slow.has(n.nodeId) && n.stragglerAt === null)
    .map((n) => ({ node: n.nodeId, incarnation: n.incarnation, seconds: median(n.computeWindow)!, medianSeconds: jobMedian! }));
}

export class StragglerWatch {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /** Called after a heartbeat that moved its node's window; judges the job at most once per interval. */
  async check(job: Job): Promise<void> {
    const spec = job.spec.spec;
    const now = this.now();
    const interval = spec.faultTolerance.heartbeatInterval;
    if (job.stragglerCheckedAt !== null && now - job.stragglerCheckedAt < interval) return;
    if (!(await this.store.jobs.claimStragglerCheck(job.id, now, interval))) return;
    const running = await this.store.nodes.listByJob(job.id, { statuses: ['running'] });
    const relaunch = spec.diagnosis?.relaunchStragglers === true;
    for (const found of findStragglers(running, now)) {
      await this.store.transaction(async (tx) => {
        if (!(await tx.nodes.markStraggler({ jobId: job.id, nodeId: found.node, incarnation: found.incarnation }, now))) return;
        await tx.nodeEvents.append({
          jobId: job.id,
          nodeId: found.node,
          incarnation: found.incarnation,
          kind: 'straggler_detected',
          source: 'api',
          data: { seconds: found.seconds, medianSeconds: found.medianSeconds, relaunch },
        });
      });
    }
  }
}
