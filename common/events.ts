// The job's event bus: node_events rows, one append-only log that the agents (through the API),
// the API and the workflow's activities write, each row with its source and, when it is about one
// training process, its rank. The job workflow reads it from a cursor and acts on the kinds that
// change decisions; `rover events` shows all of it.
//
// Each kind's `data` has one zod schema here, derived from what its writers send. Writers go
// through the store's typed append (store/nodeEvents.ts), which refuses data its kind's schema
// does not describe, unknown fields included; readers parse rows once (parseJobEvent) and trust
// the types after. Fields that events written by earlier versions lack are optional, so rows and
// recorded workflow histories of those versions read as they did.
import { z } from 'zod';
import { FAILURE_CLASSES } from './failureRules.ts';
import { HANG_ACTIONS } from './diagnosis.ts';
import { RESTORE_SOURCES } from './trainerProtocol.ts';

const int = z.number().int();
const count = int.min(0);

const nodeIncarnation = z.object({ node: count, incarnation: count });

/** The API's judgement of a failure against its round's culprit (common/failureCulprit.ts); absent in events written before it. */
const judgement = {
  role: z.enum(['culprit', 'consequence']).optional(),
  /** consequence: the round's culprit it followed. */
  consequenceOf: nodeIncarnation.optional(),
  /** culprit: an earlier, weaker culprit of the round it unseated. */
  supersedes: nodeIncarnation.optional(),
};

/** What an agent's report carries (common/protocol.ts nodeReport, less the node and kind), plus the API's OOM finding. */
const reportFields = {
  round: count,
  localRank: count.optional(),
  exitCode: int.nullable().optional(),
  signal: z.string().nullable().optional(),
  stderrTail: z.string().optional(),
  exitedAt: count.optional(),
  step: count.nullable().optional(),
  restarts: count,
  reason: z.string().optional(),
  allProcessesAlike: z.boolean().optional(),
  /** The stderr tail says the process ran out of memory. */
  oomKilled: z.boolean().optional(),
};

/** node_failed and node_lost: an agent's report (node_failed), or the worker's finding of a dead or silent node (store recordNodeDown). */
const nodeDown = z.object({
  ...reportFields,
  /** Absent in node_lost events written before rounds were judged. */
  round: count.optional(),
  /** Absent when the worker found the node down. */
  restarts: count.optional(),
  /** The platform took the node away (eviction, preemption): relaunched without spending the budget. */
  platformCause: z.string().optional(),
  ...judgement,
});

/** Every kind of the bus, in the order `rover events` documents them, with its data's schema. */
export const EVENT_DATA = {
  /**
   * A backend created the node: local {pid, logPath}, kubernetes {pod, namespace}, ray {rayJob,
   * address, logPath}; each with `host`, the machine it was placed on if known then (absent in
   * events written before it).
   */
  node_launched: z.object({
    pid: int.nullable().optional(),
    logPath: z.string().nullable().optional(),
    host: z.string().nullable().optional(),
    pod: z.string().optional(),
    namespace: z.string().optional(),
    rayJob: z.string().optional(),
    address: z.string().optional(),
  }),
  /** The agent process announced itself. */
  node_registered: z.object({ pid: int, host: z.string() }),
  /** A new rendezvous round opened; `cause` says why (common/jobReasons.ts ROUND_CAUSE). */
  round_opened: z.object({ round: count, cause: z.string() }),
  /** A round closed: its ranked members, the nodes cut off (to a multiple of nodes.unit), rank 0's address. */
  round_closed: z.object({
    round: count,
    members: z.array(z.object({ node: count, incarnation: count, groupRank: count })),
    excluded: z.array(count),
    masterAddr: z.string(),
    masterPort: int,
  }),
  /** Fewer than min nodes joined in time; `joined` and `pending` absent in events written before them. */
  rendezvous_failed: z.object({ round: count, reason: z.string(), joined: count.optional(), pending: count.optional() }),
  /**
   * A training process failed and the agent restarts its group: the report, the API's failure
   * class, the node's charged failures and the round judgement (those absent in older events).
   */
  process_failed: z.object({
    ...reportFields,
    failure: z.object({ class: z.enum(FAILURE_CLASSES), rule: z.string(), traceback: z.string().nullable() }).optional(),
    failures: count.optional(),
    ...judgement,
  }),
  /** The agent gave up (process restarts exhausted), or the worker saw the node exit with a code. */
  node_failed: nodeDown,
  /** Every process of the node exited 0. */
  node_succeeded: z.object(reportFields),
  /** The node's process is gone or its heartbeats stopped, without a report. */
  node_lost: nodeDown,
  /** Rover tore the node down. */
  node_stopped: z.object({}),
  /** Every rank of the world reported this step's checkpoint. */
  checkpoint_committed: z.object({ step: count, worldSize: count, round: count, doneShards: count }),
  /** A training process resumed from a committed step. */
  checkpoint_restored: z.object({ step: count, source: z.enum(RESTORE_SOURCES), round: count, seconds: z.number().min(0).optional() }),
  /** A shard was leased more than dataset.maxRetries + 1 times. */
  shard_poisoned: z.object({ epoch: count, shardIndex: count, attempts: count, policy: z.enum(['fail', 'skip']) }),
  /** Every shard of an epoch is done (or skipped). */
  epoch_done: z.object({ epoch: count }),
  /** The first trainer of a round rewound the shard ledger to the committed step. */
  ledger_rewound: z.object({ round: count, step: count, requeued: count }),
  /** No step progress for hangTimeout while processes live; `hangTimeout` and `startup` absent in older events. */
  hang_suspected: z.object({
    since: z.number(),
    idleMs: z.number(),
    step: count,
    round: count,
    action: z.enum(HANG_ACTIONS),
    hangTimeout: z.number().optional(),
    startup: z.boolean().optional(),
  }),
  /** Evidence of a hang from one training process (agent); the first of a node's dumps has the process tree. */
  stack_dump: z.object({
    hang: int.min(1),
    method: z.enum(['py-spy', 'faulthandler', 'none']),
    pid: int,
    localRank: count,
    stack: z.string(),
    logTail: z.string(),
    processTree: z.string().optional(),
  }),
  /** While training: a node's windowed step compute time above 2× the job median. */
  straggler_detected: z.object({ seconds: z.number(), medianSeconds: z.number(), relaunch: z.boolean() }),
  /** A resource plan the job received, or made itself while the Brain was down. */
  brain_plan: z.object({
    optimizer: z.string(),
    rule: z.string(),
    reason: z.string(),
    decidedBy: z.enum(['brain', 'job master']),
    nodes: count.optional(),
    memoryBytes: z.number().optional(),
    cpu: z.number().optional(),
    inputs: z.record(z.string(), z.unknown()),
  }),
  /** An agent reached the API again after its calls failed for `downMs` (since the first failed attempt). */
  control_plane_outage: z.object({ downMs: z.number(), failedCall: z.string(), lastError: z.string() }),
  /** Warm standbys (spec.entrypoint.preload) could not be warmed; the node's trainers start cold. */
  standby_failed: z.object({
    localRank: count,
    pid: int.nullable(),
    preload: z.array(z.string()),
    reason: z.string(),
    exitCode: int.nullable(),
    signal: z.string().nullable(),
    stderrTail: z.string(),
  }),
  /** Pre-flight node check: one node's probe result of a round, or the API's verdict on the node (`exclude`: it decided to leave the straggler out). */
  node_check: z.union([
    z.object({ round: count, ok: z.boolean(), seconds: z.number(), error: z.string().optional() }),
    z.object({ verdict: z.enum(['ok', 'faulty', 'straggler']), exclude: z.boolean(), bestSeconds: z.number().nullable(), medianSeconds: z.number().nullable() }),
  ]),
} satisfies Record<string, z.ZodType>;

export type NodeEventKind = keyof typeof EVENT_DATA;
export const NODE_EVENT_KINDS = Object.keys(EVENT_DATA) as NodeEventKind[];

/** A kind's data as readers get it. */
export type EventData<K extends NodeEventKind> = z.output<(typeof EVENT_DATA)[K]>;
/** A kind's data as writers give it. */
export type EventDataInput<K extends NodeEventKind> = z.input<(typeof EVENT_DATA)[K]>;

export function isNodeEventKind(kind: string): kind is NodeEventKind {
  return Object.hasOwn(EVENT_DATA, kind);
}

/** Who emitted an event. */
export const EVENT_SOURCES = [
  'agent', // the elastic agent on a node (through the API's agent endpoints)
  'trainer', // a training process (through the trainer client)
  'api', // the API's own decisions (rendezvous rounds)
  'worker', // the job workflow's activities (launch, stop, liveness)
] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

/** The emitter of the kinds a caller does not label itself. */
export function defaultEventSource(kind: NodeEventKind): EventSource {
  if (['node_launched', 'node_stopped', 'node_lost', 'brain_plan'].includes(kind)) return 'worker';
  if (['node_registered', 'process_failed', 'node_failed', 'node_succeeded'].includes(kind)) return 'agent';
  return 'api';
}

/** Where and when an event of the bus was written, as `rover events` shows it. */
interface BusEventOrigin {
  id: number;
  at: number;
  jobId: string;
  nodeId: number | null;
  incarnation: number | null;
  rank: number | null;
  source: string;
}

/**
 * One event of the job's event bus, as `rover events` shows it: read through its kind's schema,
 * or a row no schema describes, kept as stored with `problem` saying why.
 */
export type BusEvent = BusEventOrigin &
  ({ [K in NodeEventKind]: { kind: K; data: EventData<K> } }[NodeEventKind] | { kind: string; data: unknown; problem: string });

/** An event as the workflow sees it (ids are the cursor), parsed: a discriminated union on `kind`. */
export type JobEvent<K extends NodeEventKind = NodeEventKind> = {
  [P in K]: { id: number; kind: P; nodeId: number | null; incarnation: number | null; data: EventData<P>; at: number };
}[K];

/** A row no schema describes (an unknown kind, or data its kind's schema refuses): reported and skipped, never guessed at. */
export interface RejectedEvent {
  id: number;
  kind: string;
  nodeId: number | null;
  incarnation: number | null;
  /** What is wrong, with the field's path: `data.round: expected number, received string`. */
  problem: string;
}

/** A node_events row as the store returns it. */
export interface EventRow {
  id: number;
  kind: string;
  nodeId: number | null;
  incarnation: number | null;
  data: unknown;
  createdAt: number;
}

/** Formats zod issues as `data.path: message`, joined. */
function describe(error: z.ZodError): string {
  return error.issues.map((i) => `${['data', ...i.path.map(String)].join('.')}: ${i.message}`).join('; ');
}

/** Parses one stored row: the typed event, or why it was rejected. Unknown fields are dropped. */
export function parseJobEvent(row: EventRow): { event: JobEvent } | { rejected: RejectedEvent } {
  const where = { id: row.id, kind: row.kind, nodeId: row.nodeId, incarnation: row.incarnation };
  if (!isNodeEventKind(row.kind)) return { rejected: { ...where, problem: `unknown event kind ${JSON.stringify(row.kind)}` } };
  const parsed = EVENT_DATA[row.kind].safeParse(row.data ?? {});
  if (!parsed.success) return { rejected: { ...where, problem: describe(parsed.error) } };
  return { event: { id: row.id, kind: row.kind, nodeId: row.nodeId, incarnation: row.incarnation, data: parsed.data, at: row.createdAt } as JobEvent };
}

/** Parses rows in order: the typed events, and the rows rejected. */
export function parseJobEvents(rows: EventRow[]): { events: JobEvent[]; rejected: RejectedEvent[] } {
  const events: JobEvent[] = [];
  const rejected: RejectedEvent[] = [];
  for (const row of rows) {
    const r = parseJobEvent(row);
    if ('event' in r) events.push(r.event);
    else rejected.push(r.rejected);
  }
  return { events, rejected };
}

/** One kind's stored data, parsed; undefined when it does not fit the kind's schema. */
export function readEventData<K extends NodeEventKind>(kind: K, data: unknown): EventData<K> | undefined {
  const parsed = EVENT_DATA[kind].safeParse(data);
  return parsed.success ? (parsed.data as EventData<K>) : undefined;
}

/**
 * Checks data a writer gives for its kind: the schema must accept it and describe every field
 * (at any depth; records' keys are free). Returns the problem, or undefined when it fits.
 */
export function eventDataProblem(kind: NodeEventKind, data: unknown): string | undefined {
  const parsed = EVENT_DATA[kind].safeParse(data);
  if (!parsed.success) return describe(parsed.error);
  const extra = unknownFields(data, parsed.data, 'data');
  return extra.length === 0 ? undefined : extra.map((path) => `${path}: not a field of ${kind}`).join('; ');
}

/** Paths of fields in `given` that the parsed value dropped (a schema without them strips them). */
function unknownFields(given: unknown, parsed: unknown, path: string): string[] {
  if (Array.isArray(given) && Array.isArray(parsed)) return given.flatMap((g, i) => unknownFields(g, parsed[i], `${path}.${i}`));
  if (!isPlainObject(given) || !isPlainObject(parsed)) return [];
  return Object.entries(given).flatMap(([key, value]) => {
    if (value === undefined) return [];
    if (!Object.hasOwn(parsed, key)) return [`${path}.${key}`];
    return unknownFields(value, parsed[key], `${path}.${key}`);
  });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
