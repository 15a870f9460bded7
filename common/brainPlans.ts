// Brain plans as the job master sees them: the per-node resources a plan sets, and the record of
// each plan the job applied (shown in `rover status` with its reason). Plain JSON, workflow-safe.

/** Resources of one node incarnation when a plan changed them from the spec's. */
export interface NodeResources {
  memoryBytes: number;
  cpu: number;
}

/** The part of a Brain plan the job master uses (see brain/optimizers/types.ts Plan). */
export interface BrainPlan {
  stage: string;
  nodes?: number;
  resources?: NodeResources;
  nodeId?: number;
  rule: string;
  reason: string;
}

/** A plan the job received, and what it did with it. */
export interface AppliedPlan {
  stage: string;
  rule: string;
  reason: string;
  /** What changed: "node 1 memory 268435456 bytes", "scale to 3 nodes", or "nothing". */
  applied: string;
  /** Workflow time (ms) when it was applied. */
  at: number;
}

export const PLANS_KEPT = 20;

/** Input of the optimize activity (POST /brain/v1/optimize). */
export interface OptimizeActivityInput {
  job: string;
  stage: 'initial' | 'oom' | 'running';
  nodeId?: number;
  incarnation?: number;
  exitCode?: number | null;
  reason?: string;
  memoryBytes?: number;
  currentNodes?: number;
}

export interface OptimizerActivities {
  /** Asks the Brain for a plan; null when the Brain refuses the request (4xx). Throws (and is retried) when unreachable. */
  optimize(input: OptimizeActivityInput): Promise<BrainPlan | null>;
}
