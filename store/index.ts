// The datastore's door: open a store from a URL (migrating it on the way) and use its
// repositories. Every repository method takes an optional transaction; `store.transaction`
// runs one function over repositories bound to a single transaction.
import { CamelCasePlugin, Kysely, Migrator, sql, type KyselyPlugin } from 'kysely';
import type { RoundOpening } from '../common/roundOpening.ts';
import { judgeFailure, judgementData, NODE_DOWN_WEIGHT, type FailureRole, type RoundFailure } from '../common/failureCulprit.ts';
import { BrainConfigEntriesRepository } from './brainConfigEntries.ts';
import { BrainConfigsRepository } from './brainConfigs.ts';
import { CheckpointsRepository } from './checkpoints.ts';
import { dialectForUrl, redactStoreUrl, type StoreDialect } from './connect.ts';
import { JobHistoryRepository } from './jobHistory.ts';
import { JobsRepository } from './jobs.ts';
import { MetricsRepository } from './metrics.ts';
import { migrationProvider } from './migrations.ts';
import { NodeChecksRepository } from './nodeChecks.ts';
import { NodeEventsRepository } from './nodeEvents.ts';
import { NodesRepository, type NodeKey } from './nodes.ts';
import { RendezvousRepository, ROUND_OPEN } from './rendezvous.ts';
import { contendedTransaction, type RepositoryContext, type Trx } from './repository.ts';
import type { Database } from './schema.ts';
import { ShardLedgersRepository } from './shardLedgers.ts';
import { nodeLeasePrefix, ShardsRepository } from './shards.ts';

export interface StoreRepositories {
  jobs: JobsRepository;
  nodes: NodesRepository;
  nodeEvents: NodeEventsRepository;
  rendezvous: RendezvousRepository;
  nodeChecks: NodeChecksRepository;
  shards: ShardsRepository;
  shardLedgers: ShardLedgersRepository;
  checkpoints: CheckpointsRepository;
  metrics: MetricsRepository;
  brainConfigs: BrainConfigsRepository;
  brainConfigEntries: BrainConfigEntriesRepository;
  jobHistory: JobHistoryRepository;
}

/** Repositories bound to one transaction, plus the transaction for anything else. */
export interface TransactionScope extends StoreRepositories {
  trx: Trx;
}

export interface Store extends StoreRepositories {
  db: Kysely<Database>;
  dialect: StoreDialect;
  /** Runs fn in one transaction: commits if it resolves, rolls back if it throws. */
  transaction<T>(fn: (tx: TransactionScope) => Promise<T>): Promise<T>;
  /**
   * Like transaction, for rows that many callers write at once (a rendezvous burst): on MySQL it
   * runs READ COMMITTED and again when chosen as a deadlock victim, so fn must be safe to rerun.
   */
  contendedTransaction<T>(fn: (tx: TransactionScope) => Promise<T>): Promise<T>;
  /** Round-trips a trivial query; rejects when the database is unreachable (health checks). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** Receives one line per applied migration. */
  log?: (msg: string) => void;
  /** Clock for the timestamps repositories write; default Date.now. */
  now?: () => number;
  /** More kysely plugins, after the camelCase mapping (tests count the rows each request reads). */
  plugins?: KyselyPlugin[];
}

function repositories(ctx: RepositoryContext): StoreRepositories {
  return {
    jobs: new JobsRepository(ctx),
    nodes: new NodesRepository(ctx),
    nodeEvents: new NodeEventsRepository(ctx),
    rendezvous: new RendezvousRepository(ctx),
    nodeChecks: new NodeChecksRepository(ctx),
    shards: new ShardsRepository(ctx),
    shardLedgers: new ShardLedgersRepository(ctx),
    checkpoints: new CheckpointsRepository(ctx),
    metrics: new MetricsRepository(ctx),
    brainConfigs: new BrainConfigsRepository(ctx),
    brainConfigEntries: new BrainConfigEntriesRepository(ctx),
    jobHistory: new JobHistoryRepository(ctx),
  };
}

/** Migrates the schema to the latest version; throws (naming the migration) if one fails. */
async function migrate(db: Kysely<Database>, dialect: StoreDialect, where: string, log: (msg: string) => void) {
  // Migrations spell out snake_case columns themselves, so they run without the camelCase mapping.
  const migrator = new Migrator({ db: db.withoutPlugins(), provider: migrationProvider(dialect) });
  const { error, results = [] } = await migrator.migrateToLatest();
  for (const r of results) {
    log(`store ${where}: migration ${r.migrationName} ${r.status === 'Success' ? 'applied' : r.status.toLowerCase()}`);
  }
  if (error) {
    const failed = results.find((r) => r.status === 'Error')?.migrationName;
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(
      failed
        ? `store ${where}: migration ${failed} failed: ${message}`
        : `store ${where}: cannot migrate (is the database reachable and the user allowed to create tables?): ${message}`,
      { cause: error },
    );
  }
}

/**
 * Forgets what a previous run under the job's name left (a name reused after the run ended): its
 * nodes, events, rendezvous rounds, metrics, and shard ledger with its shards and checkpoint
 * reports and commits. The Brain's history (job summaries and failures, keyed by run) stays; the
 * node-check row is per run already (by token digest). Called from prepareJob only.
 */
export async function resetJob(tx: TransactionScope, jobId: string): Promise<void> {
  await tx.nodes.deleteByJob(jobId);
  await tx.nodeEvents.deleteByJob(jobId);
  await tx.rendezvous.deleteByJob(jobId);
  // One job key for the Brain: samples under the job's name are the current run's only.
  await tx.metrics.deleteByJob(jobId);
  // The API creates the new run's ledger on first use. Files the old run doomed stay doomed: the
  // new run's agents delete them (sparing any file saved since).
  await tx.shards.deleteByJob(jobId);
  await tx.checkpoints.deleteByJob(jobId);
  await tx.shardLedgers.delete(jobId);
}

/**
 * Persists a decision of the round policy (common/roundOpening.ts) once, then emits its event:
 * `open` inserts the round and logs `round_opened` (a repeat changes nothing), `resize` sets the
 * open round's node count. Returns the round the caller goes on with.
 */
export async function applyRoundOpening(tx: TransactionScope, jobId: string, decision: RoundOpening): Promise<number | undefined> {
  if (decision.action === 'resize') {
    await tx.rendezvous.setMaxNodes({ jobId, round: decision.round }, decision.maxNodes);
    return decision.round;
  }
  if (decision.action === 'none') return decision.round;
  const { round, minNodes, maxNodes, cause } = decision;
  const { created } = await tx.rendezvous.openRound({ jobId, round, minNodes, maxNodes });
  if (created) await tx.nodeEvents.append({ jobId, kind: 'round_opened', data: { round, cause } });
  return round;
}

/**
 * Judges a failure of `round` against the round's culprit so far (common/failureCulprit.ts) and
 * records the outcome: a new culprit is stored, and an earlier culprit it unseats gets its
 * charged process restart back. Charging the new culprit is the caller's (a process failure is
 * charged, a lost node is not). A round that does not exist judges every failure a culprit.
 */
export async function judgeRoundFailure(tx: TransactionScope, jobId: string, round: number, failure: RoundFailure): Promise<FailureRole> {
  const key = { jobId, round };
  const row = await tx.rendezvous.getRound(key);
  const judged = judgeFailure(row ? tx.rendezvous.culprit(row) : null, failure);
  if (judged.role === 'consequence') return judged;
  if (row) await tx.rendezvous.setCulprit(key, failure);
  if (judged.supersedes) {
    const { node: nodeId, incarnation } = judged.supersedes;
    await tx.nodes.chargeProcessRestart({ jobId, nodeId, incarnation }, -1);
  }
  return judged;
}

/** Statuses of a node whose agent is (or is about to be) alive. */
export const LIVE_NODE_STATUSES = ['launching', 'running'];

/** Why a live node is down, as the backend (or `rover down`) saw it. */
export interface NodeDown {
  reason: string;
  /** Exit code of the node's main process when known: then it failed, else it was lost. */
  exitCode?: number | null | undefined;
  oomKilled?: boolean | undefined;
  /** The platform took it away (common/jobState.ts relaunches it without spending the budget). */
  platformCause?: string | undefined;
}

/**
 * Marks a live node failed or lost, returns its shard leases to the queue and appends the event
 * (node_failed with a known exit code, else node_lost). The node is the culprit of the last
 * round it ran in (the latest, or the one before a round its peers opened after losing it), timed
 * at its last heartbeat: its peers' failures charged before the loss was noticed are taken back.
 * False, and nothing written, when the node is gone or no longer live.
 */
export async function recordNodeDown(tx: TransactionScope, key: NodeKey, down: NodeDown, now: number): Promise<boolean> {
  const node = await tx.nodes.get(key);
  if (!node || !LIVE_NODE_STATUSES.includes(node.status)) return false;
  const failed = down.exitCode !== undefined && down.exitCode !== null;
  await tx.nodes.update(key, { status: failed ? 'failed' : 'lost', endedAt: now, exitReason: down.reason, ...(failed && { exitCode: down.exitCode }) });
  await tx.shards.releaseByPrefix(key.jobId, nodeLeasePrefix(key.nodeId, key.incarnation));
  const latest = await tx.rendezvous.latestRound(key.jobId);
  const round = latest ? latest.round - (latest.status === ROUND_OPEN ? 1 : 0) : 0;
  const judged = await judgeRoundFailure(tx, key.jobId, round, { node: key.nodeId, incarnation: key.incarnation, weight: NODE_DOWN_WEIGHT, at: node.lastHeartbeatAt ?? now, exitedAt: null });
  const data = {
    reason: down.reason,
    round,
    ...(failed && { exitCode: down.exitCode }),
    ...(down.oomKilled && { oomKilled: true }),
    ...(down.platformCause && { platformCause: down.platformCause }),
    ...judgementData(judged),
  };
  await tx.nodeEvents.append({ ...key, kind: failed ? 'node_failed' : 'node_lost', data });
  return true;
}

/**
 * Opens the store at `url` (`sqlite:<path>`, `sqlite::memory:` or
 * `mysql://user:pass@host:port/db`) and brings its schema up to date.
 */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const { dialect: kyselyDialect, kind } = dialectForUrl(url);
  const db = new Kysely<Database>({ dialect: kyselyDialect, plugins: [new CamelCasePlugin(), ...(opts.plugins ?? [])] });
  const now = opts.now ?? Date.now;
  try {
    await migrate(db, kind, redactStoreUrl(url), opts.log ?? (() => {}));
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return {
    db,
    dialect: kind,
    ...repositories({ db, dialect: kind, now }),
    transaction: (fn) =>
      db.transaction().execute((trx) => fn({ trx, ...repositories({ db: trx, dialect: kind, now }) })),
    contendedTransaction: (fn) => contendedTransaction(db, kind, (trx) => fn({ trx, ...repositories({ db: trx, dialect: kind, now }) })),
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}

export { STORE_URL_FORMAT, StoreUrlError, redactStoreUrl, type StoreDialect } from './connect.ts';
export { settleRound, type RoundRules, type RoundSettlement } from './roundSettle.ts';
export { isLockConflict, type Trx } from './repository.ts';
export type * from './schema.ts';
export type { BrainConfig, BrainConfigSnapshot, BrainConfigsRepository, NewBrainConfig } from './brainConfigs.ts';
export type { BrainConfigEntriesRepository, BrainConfigEntry } from './brainConfigEntries.ts';
export {
  METRIC_CPU_PERCENT,
  METRIC_RSS_BYTES,
  METRIC_STEP,
  METRIC_THROUGHPUT,
  type JobFailure,
  type JobHistoryRepository,
  type JobOutcome,
  historyKey,
  type JobSummary,
  type NewJobSummary,
} from './jobHistory.ts';
export type {
  Checkpoint,
  CheckpointCommit,
  CheckpointCursor,
  CheckpointDeletion,
  CheckpointReport,
  CheckpointsRepository,
  NewCheckpointCommit,
} from './checkpoints.ts';
export type { Job, JobFilter, JobPatch, JobsRepository, NewJob } from './jobs.ts';
export type { Metric, MetricQuery, MetricsRepository, NewMetric } from './metrics.ts';
export type { NewNodeEvent, NodeEvent, NodeEventsRepository } from './nodeEvents.ts';
export type { NodeCheckRecord, NodeChecksRepository } from './nodeChecks.ts';
export type { NewNode, Node, NodeKey, NodePatch, NodesRepository, BeatWrite } from './nodes.ts';
export {
  ROUND_CLOSED,
  ROUND_FAILED,
  ROUND_OPEN,
  type CloseRound,
  type JoinRequest,
  type NewRound,
  type RendezvousMember,
  type RendezvousRepository,
  type RendezvousRound,
  type RoundKey,
} from './rendezvous.ts';
export type { ShardLedger, ShardLedgersRepository } from './shardLedgers.ts';
export {
  SHARD_DONE,
  SHARD_LEASED,
  SHARD_POISON,
  SHARD_QUEUED,
  SHARD_SKIPPED,
  leaseOwner,
  nodeLeasePrefix,
  type Shard,
  type ShardCompletion,
  type ShardCounts,
  type ShardGrant,
  type ShardKey,
  type ShardProgress,
  type ShardsRepository,
} from './shards.ts';
