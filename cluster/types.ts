// The cluster orchestration layer: how a node of a job comes to exist somewhere.
import type { JobSpec } from '../common/spec/index.ts';
import type { Node } from '../store/index.ts';

export interface NodeLaunch {
  jobId: string;
  nodeId: number;
  incarnation: number;
  spec: JobSpec;
  /** Environment the agent needs: API URL, job, node, incarnation, token, settings. */
  agentEnv: Record<string, string>;
}

export interface LaunchResult {
  pid: number | null;
  logPath: string | null;
  /** False when this (job, node, incarnation) existed already and nothing new was created. */
  created: boolean;
}

export interface ClusterBackend {
  readonly name: 'local' | 'kubernetes' | 'ray';
  /** Creates the node unless this (job, node, incarnation) exists already. */
  ensureNode(launch: NodeLaunch): Promise<LaunchResult>;
  /** Stops the node: graceful first, forced after the grace period. Idempotent. */
  deleteNode(node: Node, graceMs: number): Promise<void>;
  /** Of these nodes (which the store thinks live), the ones whose process is gone, with why. */
  findDeadNodes(nodes: Node[]): Promise<{ node: Node; reason: string }[]>;
}
