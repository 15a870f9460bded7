// Wire contract between the elastic agent and the Rover API (master service).
// All agent endpoints live under /v1/jobs/:job and need `Authorization: Bearer <job token>`.
import { z } from 'zod';
import { EVENT_DATA } from './events.ts';

export const nodeRef = {
  node: z.number().int().min(0),
  incarnation: z.number().int().min(0),
};

/** POST /v1/jobs/:job/nodes/register — the agent announces itself once per incarnation. */
export const registerRequest = z.strictObject({
  ...nodeRef,
  pid: z.number().int().positive(),
  host: z.string().min(1).max(255),
});
export type RegisterRequest = z.infer<typeof registerRequest>;

/** POST /v1/jobs/:job/rendezvous/join — join the job's open round (opening one if needed). */
export const joinRequest = z.strictObject({
  ...nodeRef,
  host: z.string().min(1).max(255),
  /** A port free on this host, used as MASTER_PORT if this node becomes rank 0. */
  freePort: z.number().int().min(1).max(65535),
});
export const joinResponse = z.object({ round: z.number().int().min(1) });
export type JoinRequest = z.infer<typeof joinRequest>;
export type JoinResponse = z.infer<typeof joinResponse>;

/** GET /v1/jobs/:job/rendezvous/:round?node=&incarnation= — poll until the round closes. */
export const roundStatus = z.discriminatedUnion('status', [
  z.object({ status: z.literal('open'), round: z.number().int() }),
  z.object({
    status: z.literal('closed'),
    round: z.number().int(),
    /** GROUP_RANK of the polling node. */
    groupRank: z.number().int().min(0),
    /** Number of nodes in the round. */
    nodes: z.number().int().min(1),
    masterAddr: z.string(),
    masterPort: z.number().int(),
  }),
  /** The round closed without this node (cut to a multiple of nodes.unit): join the next one. */
  z.object({ status: z.literal('excluded'), round: z.number().int() }),
  /** The round (or job) ended: the agent stops. */
  z.object({ status: z.literal('failed'), round: z.number().int(), reason: z.string() }),
]);
export type RoundStatus = z.infer<typeof roundStatus>;

export const processSample = z.strictObject({
  localRank: z.number().int().min(0),
  pid: z.number().int().positive(),
  cpuPercent: z.number().min(0),
  rssBytes: z.number().min(0),
});

/** POST /v1/jobs/:job/nodes/heartbeat */
export const heartbeatRequest = z.strictObject({
  ...nodeRef,
  round: z.number().int().min(0),
  step: z.number().int().min(0).nullable(),
  processes: z.array(processSample).max(1024),
  /** A trainer is saving a checkpoint (between ROVER_CHECKPOINT_BEGIN and ROVER_CHECKPOINT): not a hang. */
  checkpointing: z.boolean().optional(),
  /** Slowest local process's compute time of its latest step (no all-reduce wait): straggler detection. */
  computeSeconds: z.number().min(0).finite().optional(),
  /**
   * Long poll: with nothing to ask of the node, the master may hold the answer up to this long
   * (ms, capped at the API's longest wait) and answers at once when a newer round opens. Agents
   * send their heartbeat interval, so a restart reaches them without waiting for the next beat.
   */
  waitMs: z.number().int().min(0).optional(),
});
export type HeartbeatRequest = z.infer<typeof heartbeatRequest>;

/** What the master asks of the agent in a heartbeat reply. */
/** Set while the job is hung: capture stacks, process tree and log tail once per hang (the event id). */
const captureStacks = z.number().int().min(1).optional();

/**
 * Set while a node-check session needs this node, which passed its own check, as a peer: take part
 * (poll POST …/nodes/check) until it answers done. Agents that do not know it ignore it.
 */
const nodeCheck = z.literal(true).optional();

export const heartbeatResponse = z.discriminatedUnion('action', [
  z.object({ action: z.literal('none'), captureStacks, nodeCheck }),
  /** A newer round is open: stop the group gracefully and join it. */
  z.object({ action: z.literal('restart'), round: z.number().int(), captureStacks, nodeCheck }),
  /** The job is ending or this node was removed: stop the group and exit 0. */
  z.object({ action: z.literal('stop'), reason: z.string() }),
]);
export type HeartbeatResponse = z.infer<typeof heartbeatResponse>;

export const NODE_REPORT_KINDS = ['process_failed', 'node_failed', 'node_succeeded'] as const;

/** POST /v1/jobs/:job/nodes/report — a state change the agent observed. */
export const nodeReport = z.strictObject({
  ...nodeRef,
  kind: z.enum(NODE_REPORT_KINDS),
  round: z.number().int().min(0),
  /** Local rank of the failed process, for process_failed. */
  localRank: z.number().int().min(0).optional(),
  exitCode: z.number().int().nullable().optional(),
  signal: z.string().nullable().optional(),
  /** Last lines of the failed process's stderr. */
  stderrTail: z.string().max(16 * 1024).optional(),
  /** process_failed: when the process exited (epoch ms, the node's clock); breaks ties between a round's failures. */
  exitedAt: z.number().int().min(0).optional(),
  /** Latest training step the node's processes reported before the failure. */
  step: z.number().int().min(0).nullable().optional(),
  /** Group restarts done so far by this agent, for any reason. */
  restarts: z.number().int().min(0),
  reason: z.string().max(4096).optional(),
  /**
   * process_failed: every process of the node failed the same way (exit code, signal and last
   * stderr line) — with no step, a crash loop that a second time fails the job.
   */
  allProcessesAlike: z.boolean().optional(),
});
export type NodeReport = z.infer<typeof nodeReport>;

/** The answer to a report. */
export const nodeReportResponse = z.object({
  /**
   * process_failed: true when this failure is its round's culprit and was charged to the node's
   * spec.faultTolerance.maxProcessRestarts; false when it is a consequence of another node's failure.
   */
  charged: z.boolean().optional(),
  /** process_failed: failures charged to this node incarnation so far. */
  failures: z.number().int().min(0).optional(),
});
export type NodeReportResponse = z.infer<typeof nodeReportResponse>;

export const AGENT_EVENT_KINDS = ['stack_dump', 'control_plane_outage', 'standby_failed'] as const;

/** POST /v1/jobs/:job/nodes/events body for one kind: its data is the kind's schema (common/events.ts), no other field. */
function agentEventOf<K extends (typeof AGENT_EVENT_KINDS)[number]>(kind: K) {
  return z.strictObject({
    ...nodeRef,
    kind: z.literal(kind),
    /** Global rank of the process the event is about. */
    rank: z.number().int().min(0).nullable().optional(),
    data: EVENT_DATA[kind].strict(),
  });
}

/** POST /v1/jobs/:job/nodes/events — evidence the agent gathered, into the job's event bus. */
export const agentEvent = z.discriminatedUnion('kind', [agentEventOf('stack_dump'), agentEventOf('control_plane_outage'), agentEventOf('standby_failed')]);
export type AgentEvent = z.input<typeof agentEvent>;
