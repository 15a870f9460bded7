// Kinds of node_events rows: the job's event bus. One append-only log the agents (through the
// API), the API and the workflow's activities write, each row with its source and, when it is
// about one training process, its rank. The job workflow reads it from a cursor and acts on the
// kinds that change decisions; `rover events` shows all of it. `data` is JSON per kind.

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
  'checkpoint_committed', // every rank of the world reported this step's checkpoint {step, worldSize, round, doneShards}
  'checkpoint_restored', // a training process resumed from a committed step {step, source: shm|storage, round, seconds?}
  'shard_poisoned', // a shard was leased more than dataset.maxRetries + 1 times {epoch, shardIndex, attempts, policy: fail|skip}
  'epoch_done', // every shard of an epoch is done (or skipped) {epoch}
  'ledger_rewound', // the first trainer of a round rewound the shard ledger to the committed step {round, step, requeued}
  'hang_suspected', // no step progress for hangTimeout while processes live {since, idleMs, step, round, action}
  'stack_dump', // evidence of a hang from one training process {hang, method: py-spy|faulthandler, pid, localRank, stack, processTree, logTail}
  'straggler_detected', // while training: a node's windowed step compute time above 2× the job median {seconds, medianSeconds, relaunch}
  'brain_plan', // a resource plan the job received {optimizer: initial|oom|running, rule, reason, inputs, decidedBy: brain|job master, nodes?, memoryBytes?, nodeId?}
  'control_plane_outage', // an agent reached the API again after its calls failed {downMs: since the first failed attempt, failedCall, lastError}
  'standby_failed', // warm standbys (spec.entrypoint.preload) could not be warmed; the node's trainers start cold {localRank, pid, preload, reason, exitCode, signal, stderrTail}
  'node_check', // pre-flight node check: a round's result {round, ok, seconds, peers} or the verdict {verdict: ok|faulty|straggler, bestSeconds, medianSeconds, exclude}
] as const;
export type NodeEventKind = (typeof NODE_EVENT_KINDS)[number];

/** Who emitted an event. */
export const EVENT_SOURCES = [
  'agent', // the elastic agent on a node (through the API's agent endpoints)
  'trainer', // a training process (through the trainer client)
  'api', // the API's own decisions (rendezvous rounds)
  'worker', // the job workflow's activities (launch, stop, liveness)
] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

/** The emitter of the kinds a caller does not label itself. */
export function defaultEventSource(kind: string): EventSource {
  if (['node_launched', 'node_stopped', 'node_lost', 'brain_plan'].includes(kind)) return 'worker';
  if (['node_registered', 'process_failed', 'node_failed', 'node_succeeded'].includes(kind)) return 'agent';
  return 'api';
}

/** One event of the job's event bus, as `rover events` shows it. */
export interface BusEvent {
  id: number;
  at: number;
  jobId: string;
  nodeId: number | null;
  incarnation: number | null;
  rank: number | null;
  source: string;
  kind: string;
  data: unknown;
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
