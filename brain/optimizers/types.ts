// What the optimizers take and return. Optimizers are pure: the Brain service reads the
// inputs from the store, the optimizer decides, and every plan says which rule it applied why.
import { LOCAL_MEMORY_CAP_BYTES, LOCAL_OOM_FACTOR } from '../../common/brainPlans.ts';

/** Stages a job asks the Brain about; the router picks the optimizer by stage. */
export const STAGES = ['initial', 'oom', 'running'] as const;
export type Stage = (typeof STAGES)[number];

/** Tunables; defaults below, overridable per job through the merged configuration's `optimizer` key. */
export interface OptimizerSettings {
  /** Percentile (0–1) of similar jobs' peak usage the initial plan starts from. */
  percentile: number;
  /** Fraction added on top of that percentile (0.2 = +20 %). */
  margin: number;
  /** Similar past jobs looked at, newest first. */
  historyJobs: number;
  /** OOM plan: new memory = max(current, observed peak) × factor… */
  oomFactor: number;
  /** …but never above this many bytes. */
  memoryCapBytes: number;
  /** Running plan: per-node throughput at n nodes over that at the smallest size measured must stay at least this. */
  efficiencyThreshold: number;
  /** Running plan: throughput samples needed at a node count before it counts as measured. */
  minSamples: number;
}

export const DEFAULT_OPTIMIZER_SETTINGS: OptimizerSettings = {
  percentile: 0.95,
  margin: 0.2,
  historyJobs: 20,
  oomFactor: LOCAL_OOM_FACTOR,
  memoryCapBytes: LOCAL_MEMORY_CAP_BYTES,
  efficiencyThreshold: 0.7,
  minSamples: 3,
};

export interface PlanResources {
  memoryBytes: number;
  cpu: number;
}

export interface Plan {
  stage: Stage;
  /** Recommended node count; absent when the plan does not change it. */
  nodes?: number;
  /** Per-node resources; absent when the plan does not change them. */
  resources?: PlanResources;
  /** The node the plan is about (OOM). */
  nodeId?: number;
  /** Short rule id, e.g. `history-percentile`, `oom-factor`, `insufficient-data`. */
  rule: string;
  /** One sentence a user can read in `rover status`. */
  reason: string;
  /** The figures the rule used. */
  inputs: Record<string, unknown>;
}

/** The job's spec values the optimizers fall back to. */
export interface JobShape {
  minNodes: number;
  maxNodes: number;
  unit: number;
  initialNodes: number;
  memoryBytes: number;
  cpu: number;
}

/** One finished similar job. */
export interface JobHistory {
  jobId: string;
  peakRssBytes: number | null;
  peakCpu: number | null;
  nodes: number;
  /** Its nodes' out-of-memory failures: its peak may be a cut-off one. */
  oomFailures: number;
}

/** Throughput samples (samples/s of the whole job) measured at one node count. */
export interface ThroughputAt {
  nodes: number;
  samples: number[];
}
