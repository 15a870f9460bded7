// The activity contract of the elasticJob workflow; implemented in activities/job.ts.
import type { NodeResources } from './brainPlans.ts';
import type { JobEvent, RejectedEvent } from './events.ts';
import type { PendingNode } from './pendingNodes.ts';
import type { JobPhase } from './phases.ts';
import type { JobSpec } from './spec/index.ts';
import type { StepReading } from './trainingProgress.ts';

export interface NodeIdentity {
  id: number;
  incarnation: number;
}

export interface LaunchedNode extends NodeIdentity {
  pid: number | null;
}

/** The store's answer when the workflow's timer says a round's join deadline has passed. */
export type RoundDeadlineCheck =
  /** The store's clock says not yet: look again at recheckAt. */
  | { status: 'open'; recheckAt: number }
  /** This check failed the round (rendezvous_failed is logged); the job fails with the reason. */
  | { status: 'failed'; reason: string }
  /** The round was no longer open (closed, or failed by the API); its event is on its way. */
  | { status: 'settled' };

/** What one watchNodes call returns. */
export interface WatchResult {
  /** The events the workflow acts on, oldest first; empty when the long deadline passed first. */
  events: JobEvent[];
  /**
   * Rows among them that no schema describes (common/events.ts parseJobEvent), in id order: the
   * workflow moves its cursor past them and warns. Absent when there are none, and in results
   * recorded before events were parsed.
   */
  rejected?: RejectedEvent[];
  /**
   * The training step as the call's last look at the store saw it, with rank 0's step rate:
   * it rides on a return the workflow gets anyway, so the current details show a live step
   * without a history event per step. Absent: no running node has reported a step.
   */
  progress?: StepReading;
}

export interface JobActivities {
  /**
   * Records the job (idempotent) with the digest of its token and opens rendezvous round 1.
   * `runKey`: the workflow's random, non-secret key of this run; the token is derived from it
   * with the worker's signing key (common/tokens.ts deriveJobToken), so no history holds a token.
   */
  prepareJob(input: { jobId: string; workflowId: string; spec: JobSpec; runKey: string; targetNodes: number }): Promise<void>;
  /** Creates the nodes on the job's backend; a retried (job, node, incarnation) creates nothing new. */
  launchNodes(input: {
    jobId: string;
    /** The run's key (see prepareJob): the agents' token is derived from it here, never sent through Temporal. */
    runKey: string;
    nodes: (NodeIdentity & { resources?: NodeResources; avoidHostOfIncarnation?: number })[];
  }): Promise<LaunchedNode[]>;
  /** Tears the given nodes down and marks them stopped. */
  removeNodes(input: { jobId: string; nodes: NodeIdentity[] }): Promise<void>;
  /** Opens the next rendezvous round sized for targetNodes; agents restart into it. Returns its number. */
  openRound(input: { jobId: string; targetNodes: number; cause: string }): Promise<number>;
  /**
   * Tails the job's event log after `cursor`, turning dead processes and silent nodes into
   * node_lost events; returns the events of kinds the workflow acts on (JOB_STATE_EVENT_KINDS)
   * as soon as there are any, else an empty batch after ROVER_WATCH_MAX_WAIT_MS; either way
   * with the latest step and rate. Calls recorded before the progress existed returned the bare
   * event list (see watchResultOf).
   */
  watchNodes(input: {
    jobId: string;
    cursor: number;
    /** The job's phase as the workflow decided it, recorded in the job row for metrics (absent in calls scheduled before). */
    phase?: JobPhase;
    /**
     * False while the workflow has no step reading: the first step read then wakes it, once, so
     * its current details show the step soon after training starts, not at the next event or
     * deadline. Absent (calls scheduled before): no such wake.
     */
    stepKnown?: boolean;
  }): Promise<WatchResult>;
  /**
   * A round's join deadline passed by the workflow's timer: settles it with the same round policy
   * the API applies (common/rendezvous.ts decideRound), whether or not any agent is alive to ask.
   */
  expireRound(input: { jobId: string; round: number }): Promise<RoundDeadlineCheck>;
  /** Of these nodes, the ones still launched but not registered, each with the backend's reason. */
  describePendingNodes(input: { jobId: string; nodes: NodeIdentity[] }): Promise<PendingNode[]>;
  /**
   * Records the final phase (agents are told to stop) and tears every node of the job down.
   * Returns the job's last step (the highest any node reached; no rate), for the final current
   * details; null before any step (and undefined from calls recorded before it returned one).
   */
  finishJob(input: { jobId: string; phase: JobPhase; reason: string | null }): Promise<StepReading | null>;
}

/** A watchNodes result as the workflow reads it: histories recorded before WatchResult hold the bare event list. */
export function watchResultOf(result: WatchResult | JobEvent[]): WatchResult {
  return Array.isArray(result) ? { events: result } : result;
}
