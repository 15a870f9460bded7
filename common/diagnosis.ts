// Hang detection, pure: the API runs it on heartbeats with what the store knows about the job.

export const HANG_ACTIONS = [
  'log', // record the evidence, change nothing
  'restart', // record the evidence, then restart every node's processes in a new round
  'fail', // record the evidence, then fail the job
] as const;
export type HangAction = (typeof HANG_ACTIONS)[number];

export interface HangInput {
  now: number;
  /** No step for this long while training is a hang (spec.faultTolerance.hangTimeout). */
  hangTimeoutMs: number;
  /** No first step for this long after the groups started is a hang (spec.faultTolerance.startupTimeout). */
  startupTimeoutMs: number;
  /** A checkpoint save under way extends hangTimeout by at most this (spec.faultTolerance.checkpointTimeout). */
  checkpointTimeoutMs: number;
  /** Whether a rendezvous round is open (nodes are between groups, not training). */
  roundOpen: boolean;
  /** When the latest round closed (the groups started), or null. */
  roundClosedAt: number | null;
  /** The job's running nodes in aggregate (store nodes.runningSummary): one row, whatever the job's size. */
  running: {
    count: number;
    /** The latest step of any of them (ms), or null when none made a step. */
    lastStepAt: number | null;
    /** Whether any is saving a checkpoint. */
    checkpointing: boolean;
    /** Whether any has a training process alive. */
    processesAlive: boolean;
  };
}

export type HangDecision =
  | { hung: false; why: string }
  /**
   * `since`: the last sign of progress (the last step, or the groups' start); the same value
   * identifies the same hang. `startup`: no step since the groups started.
   */
  | { hung: true; since: number; idleMs: number; startup: boolean };

/**
 * A job hangs when its training processes are alive but no node's step advanced: for
 * startupTimeout after the groups started when none made a step since (a trainer stuck in its
 * imports, a data loader or the process group's init), else for hangTimeout after the last step
 * — plus at most checkpointTimeout while a checkpoint is being saved. Never while a rendezvous
 * round is open.
 */
export function decideHang(input: HangInput): HangDecision {
  if (input.roundOpen) return { hung: false, why: 'a rendezvous round is open' };
  if (input.running.count === 0) return { hung: false, why: 'no running nodes' };
  if (!input.running.processesAlive) return { hung: false, why: 'no training process alive' };
  const lastStep = input.running.lastStepAt;
  const started = input.roundClosedAt;
  const startup = started !== null && (lastStep === null || lastStep < started);
  const since = startup ? started : lastStep;
  if (since === null) return { hung: false, why: 'not started' };
  const saving = input.running.checkpointing;
  const timeout = startup ? input.startupTimeoutMs : input.hangTimeoutMs + (saving ? input.checkpointTimeoutMs : 0);
  const idleMs = input.now - since;
  return idleMs >= timeout ? { hung: true, since, idleMs, startup } : { hung: false, why: `progress ${idleMs} ms ago` };
}
