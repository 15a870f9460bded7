// Job phases and node statuses, shared by the workflow, the API, the store and the CLI.

export const JOB_PHASES = [
  'PENDING', // accepted, nothing launched yet
  'LAUNCHING', // nodes are being created by the backend
  'RENDEZVOUS', // waiting for a rendezvous round to close
  'RUNNING', // every node of the closed round is training
  'RESCALING', // a new round is open because the world changes size or a node was replaced
  'SUCCEEDED', // every node of the final world finished with exit code 0
  'FAILED', // budget exhausted, rendezvous impossible or a fatal error; see reason
  'STOPPED', // stopped by a user (signal, CLI or cancellation)
] as const;
export type JobPhase = (typeof JOB_PHASES)[number];

export const TERMINAL_PHASES: readonly JobPhase[] = ['SUCCEEDED', 'FAILED', 'STOPPED'];

export function isTerminalPhase(phase: JobPhase): boolean {
  return TERMINAL_PHASES.includes(phase);
}

export const NODE_STATUSES = [
  'pending', // planned, not launched
  'launching', // backend asked to create it
  'running', // agent process alive
  'succeeded', // agent reported all its processes finished
  'failed', // agent exhausted its process restarts or exited with an error
  'lost', // process gone or heartbeats stopped without a report
  'stopped', // torn down by Rover
] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];
