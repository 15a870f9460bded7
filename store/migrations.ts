// Schema migrations, in code so they ship with the package. kysely's Migrator applies them in
// name order; names are timestamps, so append new ones and never edit an applied one.
// Migrations take Kysely<any>: they describe the schema as it was, not as schema.ts says now.
import { sql, type CreateTableBuilder, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { digestHex, isTokenDigest, tokenDigest } from '../common/tokens.ts';
import type { StoreDialect } from './connect.ts';

/** Column types that differ between the dialects; everything else is written once. */
function columnKit(db: Kysely<any>, dialect: StoreDialect) {
  const mysql = dialect === 'mysql';
  return {
    // SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
    autoId: mysql ? ('bigint' as const) : ('integer' as const),
    // MySQL TEXT stops at 64 KiB; job specs and event payloads may be larger.
    json: mysql ? sql`mediumtext` : sql`text`,
    // Binary collation so comparisons match SQLite's (case-sensitive names, exact keys).
    table(name: string): CreateTableBuilder<string, never> {
      const builder = db.schema.createTable(name);
      return mysql
        ? builder.modifyEnd(sql`engine=InnoDB default charset=utf8mb4 collate=utf8mb4_bin`)
        : builder;
    },
  };
}

// Keyed and indexed text stays at 191 characters: 191 × 4 bytes fits any InnoDB index.
const KEY = 'varchar(191)';

function initial(dialect: StoreDialect): Migration {
  return {
    async up(db) {
      const c = columnKit(db, dialect);

      await c.table('jobs')
        .addColumn('id', KEY, (col) => col.primaryKey())
        .addColumn('workflow_id', 'varchar(255)', (col) => col.notNull())
        .addColumn('user', KEY, (col) => col.notNull())
        .addColumn('group', KEY, (col) => col.notNull())
        .addColumn('backend', 'varchar(64)', (col) => col.notNull())
        .addColumn('spec', c.json, (col) => col.notNull())
        .addColumn('phase', 'varchar(32)', (col) => col.notNull())
        .addColumn('token', 'varchar(128)', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .addColumn('updated_at', 'bigint', (col) => col.notNull())
        .addColumn('ended_at', 'bigint')
        .addColumn('reason', 'text')
        .execute();
      await db.schema.createIndex('jobs_phase_idx').on('jobs').columns(['phase', 'created_at']).execute();

      await c.table('nodes')
        .addColumn('job_id', KEY, (col) => col.notNull())
        .addColumn('node_id', 'integer', (col) => col.notNull())
        .addColumn('incarnation', 'integer', (col) => col.notNull())
        .addColumn('rank', 'integer')
        .addColumn('status', 'varchar(32)', (col) => col.notNull())
        .addColumn('backend', 'varchar(64)', (col) => col.notNull())
        .addColumn('pid', 'integer')
        .addColumn('host', 'varchar(255)')
        .addColumn('log_path', 'text')
        .addColumn('exit_code', 'integer')
        .addColumn('exit_signal', 'varchar(32)')
        .addColumn('exit_reason', 'text')
        .addColumn('process_restarts', 'integer', (col) => col.notNull().defaultTo(0))
        .addColumn('step', 'bigint')
        .addColumn('last_heartbeat_at', 'bigint')
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .addColumn('started_at', 'bigint')
        .addColumn('ended_at', 'bigint')
        .addColumn('resources', c.json)
        .addPrimaryKeyConstraint('nodes_pk', ['job_id', 'node_id', 'incarnation'])
        .execute();

      await c.table('node_events')
        .addColumn('id', c.autoId, (col) => col.primaryKey().autoIncrement())
        .addColumn('job_id', KEY, (col) => col.notNull())
        .addColumn('node_id', 'integer')
        .addColumn('incarnation', 'integer')
        .addColumn('kind', 'varchar(64)', (col) => col.notNull())
        .addColumn('data', c.json, (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .execute();
      await db.schema.createIndex('node_events_job_idx').on('node_events').columns(['job_id', 'id']).execute();

      await c.table('rendezvous_rounds')
        .addColumn('job_id', KEY, (col) => col.notNull())
        .addColumn('round', 'integer', (col) => col.notNull())
        .addColumn('status', 'varchar(16)', (col) => col.notNull())
        .addColumn('opened_at', 'bigint', (col) => col.notNull())
        .addColumn('last_join_at', 'bigint')
        .addColumn('closed_at', 'bigint')
        .addColumn('min_nodes', 'integer', (col) => col.notNull())
        .addColumn('max_nodes', 'integer', (col) => col.notNull())
        .addColumn('master_addr', 'varchar(255)')
        .addColumn('master_port', 'integer')
        .addColumn('node_count', 'integer')
        .addPrimaryKeyConstraint('rendezvous_rounds_pk', ['job_id', 'round'])
        .execute();

      await c.table('rendezvous_members')
        .addColumn('job_id', KEY, (col) => col.notNull())
        .addColumn('round', 'integer', (col) => col.notNull())
        .addColumn('node_id', 'integer', (col) => col.notNull())
        .addColumn('incarnation', 'integer', (col) => col.notNull())
        .addColumn('host', 'varchar(255)', (col) => col.notNull())
        .addColumn('free_port', 'integer')
        .addColumn('joined_at', 'bigint', (col) => col.notNull())
        .addColumn('rank', 'integer')
        .addPrimaryKeyConstraint('rendezvous_members_pk', ['job_id', 'round', 'node_id'])
        .execute();

      await c.table('shards')
        .addColumn('job_id', KEY, (col) => col.notNull())
        .addColumn('epoch', 'integer', (col) => col.notNull())
        .addColumn('shard_index', 'integer', (col) => col.notNull())
        .addColumn('start_index', 'bigint', (col) => col.notNull())
        .addColumn('end_index', 'bigint', (col) => col.notNull())
        .addColumn('status', 'varchar(16)', (col) => col.notNull())
        .addColumn('lease_owner', KEY)
        .addColumn('lease_expires_at', 'bigint')
        .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
        .addColumn('done_at', 'bigint')
        .addPrimaryKeyConstraint('shards_pk', ['job_id', 'epoch', 'shard_index'])
        .execute();
      await db.schema.createIndex('shards_status_idx').on('shards').columns(['job_id', 'status']).execute();

      await c.table('checkpoints')
        .addColumn('job_id', KEY, (col) => col.notNull())
        .addColumn('step', 'bigint', (col) => col.notNull())
        .addColumn('rank', 'integer', (col) => col.notNull())
        .addColumn('path', 'text', (col) => col.notNull())
        .addColumn('bytes', 'bigint', (col) => col.notNull())
        .addColumn('checksum', 'varchar(255)', (col) => col.notNull())
        .addColumn('reported_at', 'bigint', (col) => col.notNull())
        .addPrimaryKeyConstraint('checkpoints_pk', ['job_id', 'step', 'rank'])
        .execute();

      await c.table('checkpoint_commits')
        .addColumn('job_id', KEY, (col) => col.notNull())
        .addColumn('step', 'bigint', (col) => col.notNull())
        .addColumn('committed_at', 'bigint', (col) => col.notNull())
        .addColumn('world_size', 'integer', (col) => col.notNull())
        .addColumn('shard_cursor', c.json, (col) => col.notNull())
        .addPrimaryKeyConstraint('checkpoint_commits_pk', ['job_id', 'step'])
        .execute();

      await c.table('metrics')
        .addColumn('id', c.autoId, (col) => col.primaryKey().autoIncrement())
        .addColumn('job_id', KEY, (col) => col.notNull())
        .addColumn('node_id', 'integer')
        .addColumn('incarnation', 'integer')
        .addColumn('name', KEY, (col) => col.notNull())
        .addColumn('value', 'double precision', (col) => col.notNull())
        .addColumn('labels', c.json, (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .execute();
      await db.schema.createIndex('metrics_job_name_idx').on('metrics').columns(['job_id', 'name', 'created_at']).execute();
      await db.schema.createIndex('metrics_created_idx').on('metrics').column('created_at').execute();

      await c.table('brain_configs')
        .addColumn('id', c.autoId, (col) => col.primaryKey().autoIncrement())
        .addColumn('source', KEY, (col) => col.notNull())
        .addColumn('version', 'integer', (col) => col.notNull())
        .addColumn('name', 'varchar(255)', (col) => col.notNull())
        .addColumn('include', c.json, (col) => col.notNull())
        .addColumn('exclude', c.json, (col) => col.notNull())
        .addColumn('configure', c.json, (col) => col.notNull())
        .addColumn('priority', 'integer', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .execute();
      await db.schema.createIndex('brain_configs_source_idx').on('brain_configs').columns(['source', 'version']).execute();

      await c.table('brain_config_snapshots')
        .addColumn('source', KEY, (col) => col.notNull())
        .addColumn('version', 'integer', (col) => col.notNull())
        .addColumn('published_at', 'bigint', (col) => col.notNull())
        .addPrimaryKeyConstraint('brain_config_snapshots_pk', ['source', 'version'])
        .execute();
    },
  };
}

/** Shard ledger: the round the ledger was last rewound for, and the step each shard was done at. */
function shardLedger(dialect: StoreDialect): Migration {
  return {
    async up(db) {
      const c = columnKit(db, dialect);
      await db.schema.alterTable('shards').addColumn('done_step', 'bigint').execute();
      // Leasing reads queued/leased shards of a job in (epoch, shard_index) order.
      await db.schema.createIndex('shards_lease_idx').on('shards').columns(['job_id', 'status', 'epoch', 'shard_index']).execute();
      await c.table('shard_ledgers')
        .addColumn('job_id', KEY, (col) => col.primaryKey())
        .addColumn('token', 'varchar(128)', (col) => col.notNull())
        .addColumn('round', 'integer', (col) => col.notNull())
        .addColumn('resume_step', 'bigint', (col) => col.notNull())
        .addColumn('epochs_done', 'integer', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .execute();
    },
  };
}

/** Brain history: one summary per job (features, usage peaks, outcome), node failures, and the SQL config source. */
function brainHistory(dialect: StoreDialect): Migration {
  return {
    async up(db) {
      const c = columnKit(db, dialect);
      await c.table('job_summaries')
        .addColumn('job_id', KEY, (col) => col.primaryKey())
        .addColumn('name', KEY, (col) => col.notNull())
        .addColumn('user', KEY, (col) => col.notNull())
        .addColumn('group', KEY, (col) => col.notNull())
        .addColumn('cluster', 'varchar(64)', (col) => col.notNull())
        .addColumn('entrypoint', 'varchar(1024)', (col) => col.notNull())
        .addColumn('dataset_size', 'bigint')
        .addColumn('min_nodes', 'integer', (col) => col.notNull())
        .addColumn('max_nodes', 'integer', (col) => col.notNull())
        .addColumn('initial_nodes', 'integer', (col) => col.notNull())
        .addColumn('final_nodes', 'integer')
        .addColumn('memory_bytes', 'bigint', (col) => col.notNull())
        .addColumn('cpu', 'double precision', (col) => col.notNull())
        .addColumn('peak_rss_bytes', 'bigint')
        .addColumn('peak_cpu', 'double precision')
        .addColumn('phase', 'varchar(32)', (col) => col.notNull())
        .addColumn('runtime_ms', 'bigint')
        .addColumn('node_failures', 'integer', (col) => col.notNull().defaultTo(0))
        .addColumn('oom_failures', 'integer', (col) => col.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .addColumn('ended_at', 'bigint')
        .execute();
      await db.schema.createIndex('job_summaries_name_idx').on('job_summaries').columns(['name', 'ended_at']).execute();
      await db.schema.createIndex('job_summaries_user_idx').on('job_summaries').columns(['user', 'group', 'ended_at']).execute();

      await c.table('job_failures')
        .addColumn('id', c.autoId, (col) => col.primaryKey().autoIncrement())
        .addColumn('job_id', KEY, (col) => col.notNull())
        .addColumn('node_id', 'integer', (col) => col.notNull())
        .addColumn('incarnation', 'integer', (col) => col.notNull())
        .addColumn('exit_code', 'integer')
        .addColumn('reason', 'varchar(1024)', (col) => col.notNull())
        .addColumn('oom', 'integer', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .execute();
      await db.schema.createIndex('job_failures_job_idx').on('job_failures').columns(['job_id', 'created_at']).execute();

      await c.table('brain_config_entries')
        .addColumn('name', KEY, (col) => col.primaryKey())
        .addColumn('priority', 'integer', (col) => col.notNull())
        .addColumn('include', c.json, (col) => col.notNull())
        .addColumn('exclude', c.json, (col) => col.notNull())
        .addColumn('configure', c.json, (col) => col.notNull())
        .addColumn('updated_at', 'bigint', (col) => col.notNull())
        .execute();
    },
  };
}

/** The event bus: node events also say who emitted them (agent, api, worker, …) and for which rank; nodes say when their step last moved. */
function eventSourceRank(): Migration {
  return {
    async up(db) {
      await db.schema.alterTable('node_events').addColumn('source', 'varchar(32)', (col) => col.notNull().defaultTo('')).execute();
      await db.schema.alterTable('node_events').addColumn('rank', 'integer').execute();
      // Hang detection: when the node's step last advanced, and whether a checkpoint save is under way.
      await db.schema.alterTable('nodes').addColumn('step_at', 'bigint').execute();
      await db.schema.alterTable('nodes').addColumn('checkpointing', 'integer', (col) => col.notNull().defaultTo(0)).execute();
    },
  };
}

/** The culprit of each round's failures (api/agentService.ts report), so victims spend no restart budget. */
function roundCulprit(): Migration {
  return {
    async up(db) {
      for (const column of ['culprit_node', 'culprit_incarnation', 'culprit_weight'] as const) {
        await db.schema.alterTable('rendezvous_rounds').addColumn(column, 'integer').execute();
      }
      for (const column of ['culprit_at', 'culprit_exited_at'] as const) {
        await db.schema.alterTable('rendezvous_rounds').addColumn(column, 'bigint').execute();
      }
    },
  };
}

/** Why a launched node has not started yet (watchNodes asks its backend), for `rover status` and the reasons of deadlines. */
function nodePendingReason(): Migration {
  return {
    async up(db) {
      await db.schema.alterTable('nodes').addColumn('pending_reason', 'varchar(1024)').execute();
    },
  };
}

/**
 * Job tokens at rest become digests (common/tokens.ts): jobs.token and shard_ledgers.token are
 * hashed in place, then renamed token_digest, so a read of the store yields no usable token.
 * Running agents keep working: they present the token, the API hashes it. The Brain's summary of
 * each job's current run is keyed by a token prefix (store/jobHistory.ts historyKey), which now
 * comes from the digest: that key moves along. Every step is idempotent, as MySQL cannot roll
 * DDL back: a rerun after a crash hashes only what is still plain and renames only what is not.
 */
function tokenDigests(): Migration {
  return {
    async up(db) {
      const columns = async (table: string) =>
        new Set((await db.introspection.getTables()).find((t) => t.name === table)?.columns.map((c) => c.name) ?? []);
      const jobColumns = await columns('jobs');
      if (jobColumns.has('token')) {
        const jobs: { id: string; token: string }[] = await db.selectFrom('jobs').select(['id', 'token']).execute();
        for (const { id, token } of jobs) {
          if (isTokenDigest(token)) continue;
          const digest = tokenDigest(token);
          await db.updateTable('jobs').set({ token: digest }).where('id', '=', id).execute();
          const [from, to] = [`${id}@${token.slice(0, 8)}`, `${id}@${digestHex(digest).slice(0, 8)}`];
          const taken = await db.selectFrom('job_summaries').select('job_id').where('job_id', '=', to).executeTakeFirst();
          if (!taken) await db.updateTable('job_summaries').set({ job_id: to }).where('job_id', '=', from).execute();
        }
        await db.schema.alterTable('jobs').renameColumn('token', 'token_digest').execute();
      }
      if ((await columns('shard_ledgers')).has('token')) {
        const ledgers: { job_id: string; token: string }[] = await db.selectFrom('shard_ledgers').select(['job_id', 'token']).execute();
        for (const { job_id, token } of ledgers) {
          if (!isTokenDigest(token)) await db.updateTable('shard_ledgers').set({ token: tokenDigest(token) }).where('job_id', '=', job_id).execute();
        }
        await db.schema.alterTable('shard_ledgers').renameColumn('token', 'token_digest').execute();
      }
    },
  };
}

/**
 * The agent hot path (issue 14). A round counts its members as they join, so a poll can tell from
 * the round row alone whether the round policy has anything to decide (common/roundDue.ts). The
 * job row says when its hang check last scanned the job's nodes, claimed by compare-and-set so one
 * heartbeat per interval scans (on any API replica), and which hang that scan found, so the other
 * heartbeats can ask for evidence without a scan. Each step checks first: MySQL cannot roll DDL
 * back, so a rerun after a crash does only what is left.
 */
function agentHotPath(): Migration {
  return {
    async up(db) {
      const columns = async (table: string) =>
        new Set((await db.introspection.getTables()).find((t) => t.name === table)?.columns.map((c) => c.name) ?? []);
      if (!(await columns('rendezvous_rounds')).has('member_count')) {
        await db.schema.alterTable('rendezvous_rounds').addColumn('member_count', 'integer', (col) => col.notNull().defaultTo(0)).execute();
      }
      // Rounds opened before this migration (an open one may still be filling) count their members once.
      await sql`update rendezvous_rounds set member_count = (select count(*) from rendezvous_members m where m.job_id = rendezvous_rounds.job_id and m.round = rendezvous_rounds.round)`.execute(db);
      const jobColumns = await columns('jobs');
      if (!jobColumns.has('hang_checked_at')) await db.schema.alterTable('jobs').addColumn('hang_checked_at', 'bigint').execute();
      if (!jobColumns.has('hang_event_id')) await db.schema.alterTable('jobs').addColumn('hang_event_id', 'bigint').execute();
    },
  };
}

/**
 * A stateless API (issue 14): what agents depend on between requests moves from one API process's
 * memory into the store. The pre-flight node check's state gets a row per job (compare-and-set on
 * version); a node's recent step compute times (its straggler window) and when it was reported a
 * straggler go on its node row, which its heartbeat writes anyway; the job row says when its
 * straggler judgement last ran, claimed by compare-and-set like the hang check. Each step checks
 * first: MySQL cannot roll DDL back, so a rerun after a crash does only what is left.
 */
function statelessApi(dialect: StoreDialect): Migration {
  return {
    async up(db) {
      const c = columnKit(db, dialect);
      const tables = await db.introspection.getTables();
      const columns = (table: string) => new Set(tables.find((t) => t.name === table)?.columns.map((col) => col.name) ?? []);
      if (!tables.some((t) => t.name === 'node_checks')) {
        await c.table('node_checks')
          .addColumn('job_id', KEY, (col) => col.primaryKey())
          .addColumn('token_digest', 'varchar(128)', (col) => col.notNull())
          .addColumn('version', 'integer', (col) => col.notNull())
          .addColumn('state', c.json, (col) => col.notNull())
          .addColumn('updated_at', 'bigint', (col) => col.notNull())
          .execute();
      }
      const nodeColumns = columns('nodes');
      if (!nodeColumns.has('compute_window')) await db.schema.alterTable('nodes').addColumn('compute_window', 'varchar(1024)').execute();
      if (!nodeColumns.has('straggler_at')) await db.schema.alterTable('nodes').addColumn('straggler_at', 'bigint').execute();
      if (!columns('jobs').has('straggler_checked_at')) await db.schema.alterTable('jobs').addColumn('straggler_checked_at', 'bigint').execute();
    },
  };
}

/**
 * Pre-flight node-check listeners live only while needed (security issue 11): the node-check row
 * says which nodes that passed earlier the current round needs as peers, apart from the state, so
 * a heartbeat reads that short list and never the session. Checks first, like the others.
 */
function nodeCheckPartners(): Migration {
  return {
    async up(db) {
      const table = (await db.introspection.getTables()).find((t) => t.name === 'node_checks');
      if (!table?.columns.some((c) => c.name === 'partners_wanted')) {
        await db.schema.alterTable('node_checks').addColumn('partners_wanted', 'varchar(1024)').execute();
      }
    },
  };
}

/**
 * Batched shard leases (issue 14): a lease reads only the rows it hands out. Queued shards come
 * from shards_lease_idx (job, status, epoch, shard_index) in order; expired leases need
 * (job, status, lease_expires_at), else every pick scans all shards in flight. That index replaces
 * shards_status_idx (job, status), a prefix of both that only cost a write per status change.
 * Each step checks first: MySQL cannot roll DDL back, so a rerun after a crash does only what is left.
 */
function shardLeaseBatches(dialect: StoreDialect): Migration {
  return {
    async up(db) {
      const { rows } =
        dialect === 'mysql'
          ? await sql<{ name: string }>`select distinct index_name as name from information_schema.statistics where table_schema = database() and table_name = 'shards'`.execute(db)
          : await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'shards'`.execute(db);
      const existing = new Set(rows.map((r) => r.name));
      if (!existing.has('shards_expiry_idx')) {
        await db.schema.createIndex('shards_expiry_idx').on('shards').columns(['job_id', 'status', 'lease_expires_at']).execute();
      }
      if (existing.has('shards_status_idx')) {
        const drop = db.schema.dropIndex('shards_status_idx');
        // MySQL names the table of an index; SQLite's index names are global and it takes no ON.
        await (dialect === 'mysql' ? drop.on('shards') : drop).execute();
      }
    },
  };
}

/**
 * Checkpoint files are deleted where they are (issue 17): the API records what a commit dooms
 * (retention, partial steps) and an agent of the job claims, deletes and acknowledges it. A claim
 * is a lease (claimed_until, claim_token), so one agent deletes each file and a dead one's claim
 * lapses. Checks first, like the others.
 */
function checkpointDeletions(dialect: StoreDialect): Migration {
  return {
    async up(db) {
      if ((await db.introspection.getTables()).some((t) => t.name === 'checkpoint_deletions')) return;
      const c = columnKit(db, dialect);
      await c.table('checkpoint_deletions')
        .addColumn('id', c.autoId, (col) => col.primaryKey().autoIncrement())
        .addColumn('job_id', KEY, (col) => col.notNull())
        .addColumn('step', 'bigint', (col) => col.notNull())
        .addColumn('rank', 'integer', (col) => col.notNull())
        .addColumn('path', 'text', (col) => col.notNull())
        .addColumn('doomed_at', 'bigint', (col) => col.notNull())
        .addColumn('claimed_until', 'bigint', (col) => col.notNull().defaultTo(0))
        .addColumn('claim_token', 'varchar(64)')
        .execute();
      await db.schema.createIndex('checkpoint_deletions_job_idx').on('checkpoint_deletions').columns(['job_id', 'claimed_until']).execute();
    },
  };
}

/** The ordered migration list; the Migrator sorts by name, which is also this order. */
export function migrationProvider(dialect: StoreDialect): MigrationProvider {
  return {
    async getMigrations() {
      return {
        '2026_11_25_0001_initial': initial(dialect),
        '2026_11_25_0401_shard_ledger': shardLedger(dialect),
        '2026_11_25_0500_brain_history': brainHistory(dialect),
        '2026_11_25_0700_event_source_rank': eventSourceRank(),
        '2026_11_30_0100_round_culprit': roundCulprit(),
        '2026_12_01_0200_token_digests': tokenDigests(),
        '2026_12_01_0300_node_pending_reason': nodePendingReason(),
        '2026_12_02_0100_agent_hot_path': agentHotPath(),
        '2026_12_02_0200_stateless_api': statelessApi(dialect),
        '2026_12_03_0100_node_check_partners': nodeCheckPartners(),
        '2026_12_04_0100_shard_lease_batches': shardLeaseBatches(dialect),
        '2026_12_05_0100_checkpoint_deletions': checkpointDeletions(dialect),
      };
    },
  };
}
