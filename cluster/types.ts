// The cluster orchestration layer: how a node of a job comes to exist somewhere.
import type { EventDataInput } from '../common/events.ts';
import type { JobSpec, ResourcesSpec } from '../common/spec/index.ts';
import type { Node } from '../store/index.ts';

export interface NodeLaunch {
  jobId: string;
  nodeId: number;
  incarnation: number;
  spec: JobSpec;
  /** Resources of this incarnation: the spec's, or a plan's (e.g. more memory after an OOM). */
  resources: ResourcesSpec;
  /**
   * Keep this node off the host that incarnation ran on (it failed the node check). Backends
   * that place nodes on hosts honour it (Kubernetes); the local backend has one host.
   */
  avoidHostOfIncarnation?: number;
  /** Environment the agent needs: API URL, job, node, incarnation, token, settings. */
  agentEnv: Record<string, string>;
}

export interface LaunchResult {
  pid: number | null;
  logPath: string | null;
  /**
   * The machine the node was placed on, as far as the backend knows at launch: local, this
   * machine's hostname; Kubernetes, the pod's node when it is bound at creation; else null
   * (a pod not scheduled yet, a Ray job submitted to the cluster).
   */
  host: string | null;
  /** False when this (job, node, incarnation) existed already and nothing new was created. */
  created: boolean;
  /**
   * What the node_launched event records (a pid, a pod, a Ray job id; `host` is added) when the store has not
   * recorded this launch yet: created now, or created by a launch that ended before it recorded
   * it. Absent: recorded already. The launchNodes activity writes it (activities/nodeLaunch.ts).
   */
  launched?: EventDataInput<'node_launched'>;
}

/** A node the backend saw end without its agent reporting it. */
export interface DeadNode {
  node: Node;
  reason: string;
  /** Exit code of the node's main process when the backend knows it (pods, Ray jobs). */
  exitCode?: number | null;
  /** The platform killed it for memory (Kubernetes OOMKilled): the OOM path raises its memory. */
  oomKilled?: boolean;
  /** The platform took the node away (eviction, preemption, a lost machine): relaunched without spending maxNodeRelaunches. */
  platformCause?: string;
}

export interface ClusterBackend {
  readonly name: 'local' | 'kubernetes' | 'ray';
  /**
   * Creates the node unless this (job, node, incarnation) exists already. `current` is its row
   * (written before the call, status launching). Backends only act: the caller records the result.
   */
  ensureNode(launch: NodeLaunch, current: Node): Promise<LaunchResult>;
  /** Stops the node: graceful first, forced after the grace period. Idempotent. */
  deleteNode(node: Node, graceMs: number): Promise<void>;
  /**
   * Of these nodes (which the store thinks live), the ones that are gone, with why. Called by
   * watchNodes on every poll, so it answers from a cache or a cheap check.
   */
  findDeadNodes(nodes: Node[]): Promise<DeadNode[]>;
  /** Optional: deletes what the job holds besides its nodes (a Service, an owner object). Idempotent. */
  releaseJob?(jobId: string): Promise<void>;
  /**
   * Optional: of these nodes (launched, not registered), why each has not started, in the
   * platform's own words; nodes it knows nothing about are left out. Called by watchNodes on
   * every poll, so it answers from a cache or a cheap check.
   */
  describePending?(nodes: Node[]): Promise<PendingReason[]>;
}

/** Why a launched node has not started (Kubernetes: unschedulable, pulling its image; Ray: PENDING). */
export interface PendingReason {
  node: Node;
  reason: string;
}
