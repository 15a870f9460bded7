// Hang detection, pure: the API runs it on heartbeats with what the store knows about the job.

export const HANG_ACTIONS = [
  'log', // record the evidence, change nothing
  'restart', // record the evidence, then restart every node's processes in a new round
  'fail', // record the evidence, then fail the job
] as const;
export type HangAction = (typeof HANG_ACTIONS)[number];

export interface HangInput {
  now: number;
  hangTimeoutMs: number;
  /** Whether a rendezvous round is open (nodes are between groups, not training). */
  roundOpen: boolean;
  /** When the latest round closed (the groups started), or null. */
  roundClosedAt: number | null;
  /** The job's running nodes. */
  nodes: { stepAt: number | null; checkpointing: boolean; processesAlive: boolean }[];
}

export type HangDecision =
  | { hung: false; why: string }
  /** `since`: the last sign of progress; the same value identifies the same hang. */
  | { hung: true; since: number; idleMs: number };

/**
 * A job hangs when its training processes are alive but no node's step advanced for
 * hangTimeout since the later of the last step and the start of the current groups — and
 * neither a checkpoint save nor a rendezvous explains the silence. Jobs whose trainers never
 * reported a step are not judged (a hang before the first step goes unnoticed).
 */
export function decideHang(input: HangInput): HangDecision {
  if (input.roundOpen) return { hung: false, why: 'a rendezvous round is open' };
  if (input.nodes.length === 0) return { hung: false, why: 'no running nodes' };
  if (!input.nodes.some((n) => n.processesAlive)) return { hung: false, why: 'no training process alive' };
  if (input.nodes.some((n) => n.checkpointing)) return { hung: false, why: 'a checkpoint is being saved' };
  // A trainer that never printed ROVER_STEP tells nothing about progress: never call it hung.
  if (input.nodes.every((n) => n.stepAt === null)) return { hung: false, why: 'no step reported yet' };
  const marks = [input.roundClosedAt, ...input.nodes.map((n) => n.stepAt)].filter((t): t is number => t !== null);
  if (marks.length === 0) return { hung: false, why: 'not started' };
  const since = Math.max(...marks);
  const idleMs = input.now - since;
  return idleMs >= input.hangTimeoutMs ? { hung: true, since, idleMs } : { hung: false, why: `progress ${idleMs} ms ago` };
}
