// Messages of the elasticJob workflow: the CLI, the API and the workflow share these definitions.
import type { AppliedPlan } from '../../common/brainPlans.ts';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { JobPhase, NodeStatus } from '../../common/phases.ts';
import type { JobSpec } from '../../common/spec/index.ts';

export interface ScaleRequest {
  /** Desired number of nodes, within [spec.nodes.min, spec.nodes.max]. */
  nodes: number;
  /** Deduplicates retried requests; a repeated id is applied once. */
  requestId?: string;
}

export interface StopRequest {
  reason?: string;
}

export interface NodeView {
  id: number;
  rank: number | null;
  incarnation: number;
  status: NodeStatus;
  restarts: number;
  pid: number | null;
  exitCode: number | null;
  reason: string | null;
  /** Pre-flight node check verdict of this incarnation (spec.diagnosis); absent: not checked. */
  check?: string;
  /** The exception or last stderr line of this incarnation's latest process failure; absent: none. */
  lastError?: string;
  /**
   * Launched, not registered: why the backend has not started it, in its words (Unschedulable,
   * ImagePullBackOff, Ray's PENDING). Not workflow state: `rover status` reads it from the store.
   */
  pending?: string;
}

export interface JobStatus {
  jobId: string;
  workflowId: string;
  phase: JobPhase;
  /** Latest rendezvous round (0 before the first). */
  round: number;
  /** Training processes in the current world: nodes of the closed round × nprocPerNode. */
  worldSize: number;
  targetNodes: number;
  nodes: NodeView[];
  nodeRelaunches: number;
  processRestarts: number;
  reason: string | null;
  warnings: string[];
  /** Brain plans the job received (initial, OOM, running), newest last, each with its reason and effect. */
  plans?: AppliedPlan[];
  /** Latest committed checkpoint step (0: none yet); trainers resume from it after any restart. */
  checkpointStep: number;
  /** Dataset epochs finished so far (spec.dataset). */
  epochsDone: number;
}

export interface ElasticJobInput {
  jobId: string;
  spec: JobSpec;
  /** Continue-as-new once history reaches this many events (tests); else when the server suggests. */
  continueAsNewAfterEvents?: number;
  /** State carried across continue-as-new; absent on the first run. */
  carried?: unknown;
}

/**
 * `ApplicationFailure.type` of a FAILED job's workflow failure (non-retryable): its message is the
 * job's reason and `details[0]` its final JobStatus. SUCCEEDED and STOPPED jobs complete instead.
 */
export const JOB_FAILED = 'JobFailed';
/** `ApplicationFailure.type` of a refused scale Update (non-retryable); the message is the reason. */
export const SCALE_REFUSED = 'ScaleRefused';

export const scaleSignal = defineSignal<[ScaleRequest]>('scale');
export const stopSignal = defineSignal<[StopRequest]>('stop');
/** Like the scale signal, but the caller learns at once whether the size was accepted. */
export const scaleUpdate = defineUpdate<JobStatus, [ScaleRequest]>('scale');
export const statusQuery = defineQuery<JobStatus>('status');
