// Kinds of node_events rows: the append-only log the API, the agents' reports and the
// watcher write, and the job workflow reads from a cursor. `data` is JSON per kind.

export const NODE_EVENT_KINDS = [
  'node_launched', // backend created the node {pid, logPath}
  'node_registered', // agent process announced itself {pid, host}
  'round_opened', // a new rendezvous round opened {round, cause}
  'round_closed', // a round closed {round, members: [{node, incarnation, groupRank}], excluded, masterAddr, masterPort}
  'rendezvous_failed', // fewer than min nodes joined in time {round, reason}
  'process_failed', // a training process failed; the agent restarts its group {localRank, exitCode, signal, stderrTail, restarts}
  'node_failed', // the agent gave up (process restarts exhausted) {exitCode, signal, reason, restarts}
  'node_succeeded', // every process of the node exited 0
  'node_lost', // process gone or heartbeats stopped without a report {reason}
  'node_stopped', // Rover tore the node down
] as const;
export type NodeEventKind = (typeof NODE_EVENT_KINDS)[number];

export interface RoundMember {
  node: number;
  incarnation: number;
  groupRank: number;
}

/** An event as the workflow sees it (ids are the cursor). */
export interface JobEvent {
  id: number;
  kind: NodeEventKind;
  nodeId: number | null;
  incarnation: number | null;
  data: Record<string, unknown>;
  at: number;
}
