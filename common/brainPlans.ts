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
  /** The figures the rule used. */
  inputs?: Record<string, unknown>;
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

/**
 * The job master's own OOM rule when the Brain cannot answer: the Brain's default OOM factor and
 * memory cap (brain/optimizers/types.ts DEFAULT_OPTIMIZER_SETTINGS reads them from here), as
 * DLRover's master raises an OOM node's memory by itself.
 */
export const LOCAL_OOM_FACTOR = 2;
export const LOCAL_MEMORY_CAP_BYTES = 64 * 1024 ** 3;

/** Rule id of a plan the job master made itself because the Brain could not answer. */
export const LOCAL_OOM_RULE = 'local-oom-factor';

/** The job master's own OOM rule: spec.resources.oomFactor and oomMemoryCap, or the defaults above. */
export interface OomFallback {
  factor: number;
  capBytes: number;
}

export const DEFAULT_OOM_FALLBACK: OomFallback = { factor: LOCAL_OOM_FACTOR, capBytes: LOCAL_MEMORY_CAP_BYTES };

/**
 * The job master's OOM plan while the Brain is down: memory (bytes) × the factor, at most the
 * cap; undefined when that would not raise it (the node is at the cap). Pure, workflow-safe.
 */
export function localOomPlan(nodeId: number, memoryBytes: number, cpu: number, rule: OomFallback = DEFAULT_OOM_FALLBACK): BrainPlan | undefined {
  const product = Math.ceil(memoryBytes * rule.factor);
  const raised = Math.min(rule.capBytes, product);
  if (raised <= memoryBytes) return undefined;
  const result = raised < product ? `${product} bytes, capped at ${raised}` : `${raised} bytes (cap ${rule.capBytes})`;
  return {
    stage: 'oom',
    nodeId,
    resources: { memoryBytes: raised, cpu },
    rule: LOCAL_OOM_RULE,
    reason: `the Brain did not answer: the job master raised node ${nodeId}'s memory itself, ${rule.factor}× ${memoryBytes} = ${result}`,
    inputs: { memoryBytes, oomFactor: rule.factor, memoryCapBytes: rule.capBytes },
  };
}

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

/** The node failure behind a local OOM plan: its failed incarnation, exit code and reason. */
export interface LocalPlanFailure {
  incarnation: number;
  exitCode: number | null;
  reason: string;
}

export interface OptimizerActivities {
  /**
   * Asks the Brain for a plan and records it as the job's `brain_plan` event; null when the Brain
   * refuses the request (4xx). Throws (and is retried) when unreachable.
   */
  optimize(input: OptimizeActivityInput): Promise<BrainPlan | null>;
  /**
   * Records a plan the job master made itself (the Brain down) as a `brain_plan` event saying so;
   * with `failure` (an OOM plan), also the node failure in the job's history, which the Brain's
   * OOM stage records when it answers: later initial plans count this run's OOMs either way.
   */
  recordLocalPlan(input: { job: string; plan: BrainPlan; failure?: LocalPlanFailure }): Promise<void>;
}
