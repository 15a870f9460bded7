// Straggler detection while training, on the heartbeat path. Synchronous all-reduce makes every
// node step at the slowest node's pace, so the signal is the trainer's own compute time of a step
// (`compute=` on ROVER_STEP, carried as heartbeat.computeSeconds). Per node, a sliding window of
// those samples (one per step); a node whose window median stays above STRAGGLER_FACTOR × the
// job's median (detectStragglers: a full window, not one slow step) gets one straggler_detected
// event per incarnation. The state lives in this API process's memory: a restarted API starts
// over, which only delays a detection.
import { detectStragglers, median, STRAGGLER_FACTOR } from '../common/diagnosisNodeCheck.ts';
import type { JobSpec } from '../common/spec/index.ts';
import type { Job, Store } from '../store/index.ts';

/** Samples per node's window; also the minimum before a node is judged. */
export const STRAGGLER_WINDOW = 8;
/** A node without a new sample for this long drops out of the job's median (stopped, removed). */
export const STRAGGLER_STALE_MS = 60_000;

export interface StragglerSample {
  jobId: string;
  node: number;
  incarnation: number;
  step: number | null;
  computeSeconds: number;
  now: number;
}

export interface StragglerFinding {
  node: number;
  incarnation: number;
  seconds: number;
  medianSeconds: number;
}

interface NodeWindow {
  incarnation: number;
  step: number | null;
  lastAt: number;
  seconds: number[];
}

/** The per-job windows and the decision, without I/O. */
export class StragglerWindows {
  private readonly jobs = new Map<string, Map<number, NodeWindow>>();
  private readonly reported = new Set<string>();

  /** Adds a sample (one per step) and returns the node when it just became a straggler. */
  observe(s: StragglerSample): StragglerFinding | null {
    let nodes = this.jobs.get(s.jobId);
    if (!nodes) this.jobs.set(s.jobId, (nodes = new Map()));
    let w = nodes.get(s.node);
    if (!w || w.incarnation !== s.incarnation) nodes.set(s.node, (w = { incarnation: s.incarnation, step: null, lastAt: s.now, seconds: [] }));
    // A heartbeat repeats the latest step's figure until the next step: count each step once.
    if (s.step !== null && s.step === w.step) return null;
    w.step = s.step;
    w.lastAt = s.now;
    w.seconds.push(s.computeSeconds);
    if (w.seconds.length > STRAGGLER_WINDOW) w.seconds.shift();
    for (const [id, other] of nodes) if (s.now - other.lastAt > STRAGGLER_STALE_MS) nodes.delete(id);
    const key = `${s.jobId}/${s.node}/${s.incarnation}`;
    if (this.reported.has(key)) return null;
    const windows = [...nodes].map(([node, o]) => ({ node, ms: o.seconds }));
    if (!detectStragglers(windows, STRAGGLER_FACTOR, STRAGGLER_WINDOW).includes(s.node)) return null;
    this.reported.add(key);
    const full = windows.filter((x) => x.ms.length >= STRAGGLER_WINDOW);
    return {
      node: s.node,
      incarnation: s.incarnation,
      seconds: median(w.seconds)!,
      medianSeconds: median(full.map((x) => median(x.ms)!))!,
    };
  }

  /** Forgets a job (it ended). */
  forget(jobId: string): void {
    this.jobs.delete(jobId);
    for (const key of this.reported) if (key.startsWith(`${jobId}/`)) this.reported.delete(key);
  }
}

export class StragglerWatch {
  private readonly windows = new StragglerWindows();

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /** Called on each heartbeat that carries computeSeconds; appends the event when a straggler shows. */
  async check(job: Job, node: number, incarnation: number, step: number | null, computeSeconds: number): Promise<void> {
    const found = this.windows.observe({ jobId: job.id, node, incarnation, step, computeSeconds, now: this.now() });
    if (!found) return;
    const relaunch = (job.spec as JobSpec).spec.diagnosis?.relaunchStragglers === true;
    await this.store.nodeEvents.append({
      jobId: job.id,
      nodeId: node,
      incarnation,
      kind: 'straggler_detected',
      source: 'api',
      data: { seconds: found.seconds, medianSeconds: found.medianSeconds, relaunch },
    });
  }

  forget(jobId: string): void {
    this.windows.forget(jobId);
  }
}
