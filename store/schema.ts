// Table types for the Rover datastore. Property names are camelCase; kysely's CamelCasePlugin
// maps them to the snake_case columns the migrations create (jobId ↔ job_id).
// Timestamps are integer milliseconds since the epoch (BIGINT) on both dialects; JSON columns
// hold text that the repositories serialise and parse.
import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Milliseconds since the Unix epoch. */
export type Millis = number;
/** JSON-encoded text; repositories parse it on the way out. */
export type JsonText = string;

export interface JobsTable {
  /** The job name, unique across Rover. */
  id: string;
  workflowId: string;
  user: string;
  group: string;
  backend: string;
  spec: JsonText;
  phase: string;
  /**
   * Digest of the per-run secret agents and trainers present to the API (common/tokens.ts):
   * `sha256:<hex>`. The token itself is never stored.
   */
  tokenDigest: string;
  createdAt: Millis;
  updatedAt: Millis;
  endedAt: Millis | null;
  reason: string | null;
  /** When a heartbeat last scanned the job's nodes for a hang (api/hangWatch.ts): one scan per interval. */
  hangCheckedAt: Millis | null;
  /** The hang_suspected event that scan found, or null: the other heartbeats ask for its evidence. */
  hangEventId: number | null;
  /** When a heartbeat last judged the job's straggler windows (api/stragglerWatch.ts): one judgement per interval. */
  stragglerCheckedAt: Millis | null;
}

export interface NodesTable {
  jobId: string;
  nodeId: number;
  incarnation: number;
  rank: number | null;
  status: string;
  backend: string;
  pid: number | null;
  host: string | null;
  logPath: string | null;
  exitCode: number | null;
  exitSignal: string | null;
  exitReason: string | null;
  /** Process failures charged to this incarnation's spec.faultTolerance.maxProcessRestarts (culprits only). */
  processRestarts: Generated<number>;
  step: number | null;
  /** When the node's step last advanced (hang detection). */
  stepAt: Millis | null;
  /** 1 while the node's trainers save a checkpoint (hang detection holds off). */
  checkpointing: Generated<number>;
  lastHeartbeatAt: Millis | null;
  createdAt: Millis;
  startedAt: Millis | null;
  endedAt: Millis | null;
  resources: JsonText | null;
  /**
   * While launched and not registered: why the backend has not started it, in its own words
   * (common/pendingNodes.ts), kept current by watchNodes; null: nothing known.
   */
  pendingReason: string | null;
  /** JSON array: the trainers' compute seconds of this incarnation's latest steps (api/stragglerWatch.ts), oldest first. */
  computeWindow: JsonText | null;
  /** When this incarnation was reported a straggler (once per incarnation); null: not. */
  stragglerAt: Millis | null;
}

export interface NodeEventsTable {
  /** Auto-increment; per job, the order in which events committed. Used as a cursor. */
  id: Generated<number>;
  jobId: string;
  nodeId: number | null;
  incarnation: number | null;
  kind: string;
  data: JsonText;
  createdAt: Millis;
  /** Who emitted the event: agent, api, worker, … ('' for rows written before the column). */
  source: Generated<string>;
  /** Global rank of the training process the event is about, if any. */
  rank: number | null;
}

export interface RendezvousRoundsTable {
  jobId: string;
  round: number;
  status: string;
  openedAt: Millis;
  lastJoinAt: Millis | null;
  closedAt: Millis | null;
  minNodes: number;
  maxNodes: number;
  masterAddr: string | null;
  masterPort: number | null;
  nodeCount: number | null;
  /** Members so far, kept by each join (common/roundDue.ts decides from it without reading them). */
  memberCount: Generated<number>;
  /** The failure that explains the round's other failures (common/failureCulprit.ts); null: none yet. */
  culpritNode: number | null;
  culpritIncarnation: number | null;
  /** failureWeight of the culprit. */
  culpritWeight: number | null;
  /** When the API received the culprit's report. */
  culpritAt: Millis | null;
  /** When the culprit's process exited, by its node's clock (null: unknown). */
  culpritExitedAt: Millis | null;
}

export interface RendezvousMembersTable {
  jobId: string;
  round: number;
  nodeId: number;
  incarnation: number;
  host: string;
  /** A port free on host when the node joined: MASTER_PORT if it becomes rank 0. */
  freePort: number | null;
  joinedAt: Millis;
  rank: number | null;
}

/** One per job that ran a pre-flight node check: its state machine (common/nodeCheckSession.ts). */
export interface NodeChecksTable {
  jobId: string;
  tokenDigest: string;
  /** Compare-and-set counter: each write adds one. */
  version: number;
  state: JsonText;
  /** JSON list of `node/incarnation`: nodes that passed and the current round needs as peers; null: none. */
  partnersWanted: string | null;
  updatedAt: Millis;
}

export interface ShardsTable {
  jobId: string;
  epoch: number;
  shardIndex: number;
  /** First record index of the shard, inclusive. */
  startIndex: number;
  /** Last record index of the shard, exclusive. */
  endIndex: number;
  status: string;
  leaseOwner: string | null;
  leaseExpiresAt: Millis | null;
  attempts: Generated<number>;
  doneAt: Millis | null;
  /** Training step the shard's data went into; a rewind to step S requeues shards done after S. */
  doneStep: Generated<number | null>;
}

/** One per job with a dataset: which rendezvous round the ledger was rewound for, and to what step. */
export interface ShardLedgersTable {
  jobId: string;
  /** The job run's token digest (jobs.token_digest): a new run under the same name starts a new ledger. */
  tokenDigest: string;
  round: number;
  /** Committed step the current round resumes from (0: from the start). */
  resumeStep: number;
  /** Epochs announced as done (epoch_done events), so each is announced once per pass. */
  epochsDone: number;
  createdAt: Millis;
}

export interface CheckpointsTable {
  jobId: string;
  step: number;
  rank: number;
  path: string;
  bytes: number;
  checksum: string;
  reportedAt: Millis;
}

export interface CheckpointCommitsTable {
  jobId: string;
  step: number;
  committedAt: Millis;
  worldSize: number;
  shardCursor: JsonText;
}

/**
 * A checkpoint file a commit doomed (retention, a partial step), until an agent of the job deletes
 * it (agent/checkpointDeletion.ts). `doomedAt`: a file modified after it is a new save, spared.
 * `claimedUntil`/`claimToken`: the agent's lease on the row; 0/null while unclaimed.
 */
export interface CheckpointDeletionsTable {
  id: Generated<number>;
  jobId: string;
  step: number;
  rank: number;
  path: string;
  doomedAt: Millis;
  claimedUntil: Generated<Millis>;
  claimToken: string | null;
}

export interface MetricsTable {
  id: Generated<number>;
  jobId: string;
  nodeId: number | null;
  incarnation: number | null;
  name: string;
  value: number;
  labels: JsonText;
  createdAt: Millis;
}

export interface BrainConfigsTable {
  id: Generated<number>;
  source: string;
  version: number;
  name: string;
  include: JsonText;
  exclude: JsonText;
  configure: JsonText;
  priority: number;
  createdAt: Millis;
}

/** One per job: what it was (features), what it used (peaks), how it ended. The Brain's history. */
export interface JobSummariesTable {
  jobId: string;
  name: string;
  user: string;
  group: string;
  cluster: string;
  entrypoint: string;
  datasetSize: number | null;
  minNodes: number;
  maxNodes: number;
  initialNodes: number;
  finalNodes: number | null;
  memoryBytes: number;
  cpu: number;
  peakRssBytes: number | null;
  peakCpu: number | null;
  phase: string;
  runtimeMs: number | null;
  nodeFailures: Generated<number>;
  oomFailures: Generated<number>;
  createdAt: Millis;
  endedAt: Millis | null;
}

/** A node that failed or was lost, with its exit reason; `oom` is 1 when it ran out of memory. */
export interface JobFailuresTable {
  id: Generated<number>;
  jobId: string;
  nodeId: number;
  incarnation: number;
  exitCode: number | null;
  reason: string;
  oom: number;
  createdAt: Millis;
}

/** The SQL-table source of Brain configurations (edited by operators, read by brainConfigSync). */
export interface BrainConfigEntriesTable {
  name: string;
  priority: number;
  include: JsonText;
  exclude: JsonText;
  configure: JsonText;
  updatedAt: Millis;
}

export interface BrainConfigSnapshotsTable {
  source: string;
  version: number;
  publishedAt: Millis;
}

export interface Database {
  jobs: JobsTable;
  nodes: NodesTable;
  nodeEvents: NodeEventsTable;
  rendezvousRounds: RendezvousRoundsTable;
  rendezvousMembers: RendezvousMembersTable;
  nodeChecks: NodeChecksTable;
  shards: ShardsTable;
  shardLedgers: ShardLedgersTable;
  checkpoints: CheckpointsTable;
  checkpointCommits: CheckpointCommitsTable;
  checkpointDeletions: CheckpointDeletionsTable;
  metrics: MetricsTable;
  brainConfigs: BrainConfigsTable;
  brainConfigSnapshots: BrainConfigSnapshotsTable;
  jobSummaries: JobSummariesTable;
  jobFailures: JobFailuresTable;
  brainConfigEntries: BrainConfigEntriesTable;
}

export type JobRow = Selectable<JobsTable>;
export type NewJobRow = Insertable<JobsTable>;
export type JobRowUpdate = Updateable<JobsTable>;

export type NodeRow = Selectable<NodesTable>;
export type NewNodeRow = Insertable<NodesTable>;
export type NodeRowUpdate = Updateable<NodesTable>;

export type NodeEventRow = Selectable<NodeEventsTable>;
export type NewNodeEventRow = Insertable<NodeEventsTable>;
export type NodeEventRowUpdate = Updateable<NodeEventsTable>;

export type RendezvousRoundRow = Selectable<RendezvousRoundsTable>;
export type NewRendezvousRoundRow = Insertable<RendezvousRoundsTable>;
export type RendezvousRoundRowUpdate = Updateable<RendezvousRoundsTable>;

export type RendezvousMemberRow = Selectable<RendezvousMembersTable>;
export type NewRendezvousMemberRow = Insertable<RendezvousMembersTable>;
export type RendezvousMemberRowUpdate = Updateable<RendezvousMembersTable>;

export type ShardRow = Selectable<ShardsTable>;
export type NewShardRow = Insertable<ShardsTable>;
export type ShardRowUpdate = Updateable<ShardsTable>;

export type ShardLedgerRow = Selectable<ShardLedgersTable>;

export type CheckpointRow = Selectable<CheckpointsTable>;
export type NewCheckpointRow = Insertable<CheckpointsTable>;
export type CheckpointRowUpdate = Updateable<CheckpointsTable>;

export type CheckpointCommitRow = Selectable<CheckpointCommitsTable>;
export type NewCheckpointCommitRow = Insertable<CheckpointCommitsTable>;
export type CheckpointCommitRowUpdate = Updateable<CheckpointCommitsTable>;

export type CheckpointDeletionRow = Selectable<CheckpointDeletionsTable>;

export type MetricRow = Selectable<MetricsTable>;
export type NewMetricRow = Insertable<MetricsTable>;
export type MetricRowUpdate = Updateable<MetricsTable>;

export type BrainConfigRow = Selectable<BrainConfigsTable>;
export type NewBrainConfigRow = Insertable<BrainConfigsTable>;
export type BrainConfigRowUpdate = Updateable<BrainConfigsTable>;

export type BrainConfigSnapshotRow = Selectable<BrainConfigSnapshotsTable>;
export type NewBrainConfigSnapshotRow = Insertable<BrainConfigSnapshotsTable>;
export type BrainConfigSnapshotRowUpdate = Updateable<BrainConfigSnapshotsTable>;

export type JobSummaryRow = Selectable<JobSummariesTable>;
export type JobFailureRow = Selectable<JobFailuresTable>;
export type BrainConfigEntryRow = Selectable<BrainConfigEntriesTable>;
