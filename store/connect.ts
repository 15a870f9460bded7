// Turns a store URL into a kysely dialect: `sqlite:<path>` (better-sqlite3) or
// `mysql://user:pass@host:port/db` (mysql2 pool).
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import BetterSqlite3 from 'better-sqlite3';
import { createPool } from 'mysql2';
import {
  CompiledQuery,
  MysqlDialect,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type QueryResult,
  type SqliteDatabase,
  type SqliteDialectConfig,
} from 'kysely';

export type StoreDialect = 'sqlite' | 'mysql';

export const STORE_URL_FORMAT =
  'sqlite:<path> (e.g. sqlite:.rover/rover.db), sqlite::memory:, or mysql://user:pass@host:port/db';

/** How long a SQLite writer waits for another process's write lock before failing. */
const SQLITE_BUSY_TIMEOUT_MS = 30_000;
/** The longest pause between two tries for the lock: a batch holds it for milliseconds. */
const SQLITE_BUSY_MAX_PAUSE_MS = 16;

export class StoreUrlError extends Error {}

/** The URL with its password masked, for messages and logs. */
export function redactStoreUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*):[^@/]*@/, '$1:***@');
}

/**
 * SQLite's plain BEGIN takes the write lock lazily, so two processes that both read then write
 * deadlock and one fails at once with SQLITE_BUSY, ignoring busy_timeout. BEGIN IMMEDIATE takes
 * the write lock up front and waits for it instead (LockWaitingConnection). Inside one process
 * kysely already runs transactions one at a time over the single connection.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  constructor(
    config: SqliteDialectConfig,
    private readonly database: BetterSqlite3.Database,
  ) {
    super(config);
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    return new LockWaitingConnection(await super.acquireConnection(), this.database);
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/**
 * Waits for another process's write lock without stopping this one. SQLite's own busy handler
 * sleeps inside the call, and better-sqlite3 calls it synchronously: the whole event loop stood
 * still while another process held the lock, so two API replicas on one file each stalled the
 * other (agentScale, 2 replicas: 0.14 CPU between them, heartbeats answered seconds late). The
 * connection's busy timeout is 0 instead, and a statement refused with SQLITE_BUSY outside a
 * transaction (BEGIN IMMEDIATE, or a lone write) runs again after a short asynchronous pause,
 * for up to SQLITE_BUSY_TIMEOUT_MS. Inside a transaction this process holds the write lock
 * already, so a refusal there is another matter and is passed on.
 */
class LockWaitingConnection implements DatabaseConnection {
  constructor(
    private readonly inner: DatabaseConnection,
    private readonly database: BetterSqlite3.Database,
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const deadline = Date.now() + SQLITE_BUSY_TIMEOUT_MS;
    for (let pauseMs = 1; ; pauseMs = Math.min(2 * pauseMs, SQLITE_BUSY_MAX_PAUSE_MS)) {
      try {
        return await this.inner.executeQuery<R>(query);
      } catch (err) {
        const busy = (err as { code?: unknown }).code === 'SQLITE_BUSY';
        if (!busy || this.database.inTransaction || Date.now() >= deadline) throw err;
      }
      // Jittered, so processes waiting on one lock do not retry in step.
      await sleep(pauseMs * (0.5 + Math.random()));
    }
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }
}

/**
 * SQLite can roll back DDL, but kysely's adapter says it cannot, so its Migrator would run
 * migrations outside a transaction: a crash leaves half a schema, and two processes opening a
 * new file at once both create tables. Saying yes puts each run in one BEGIN IMMEDIATE
 * transaction: all or nothing, and the second process waits, then finds nothing to do.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  readonly #database: BetterSqlite3.Database;
  constructor(database: BetterSqlite3.Database) {
    const config = { database: withStatementCache(database) };
    super(config);
    this.#config = config;
    this.#database = database;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config, this.#database);
  }
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

/** Compiled statements kept per connection, by SQL text. */
const SQLITE_STATEMENT_CACHE = 500;

/**
 * kysely prepares every query anew, and compiling SQL was a sixth of the API's CPU on the agent
 * hot path (bench/agentScale.bench.ts). The same few statements repeat, so compiled ones are kept
 * by their text (oldest dropped past the cap). Reuse is safe: kysely runs each statement to
 * completion synchronously (nothing here streams), and SQLite recompiles one after a schema change.
 */
function withStatementCache(database: BetterSqlite3.Database): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => database.close(),
    prepare(sql: string) {
      let statement = statements.get(sql);
      if (!statement) {
        statement = database.prepare(sql);
        if (statements.size >= SQLITE_STATEMENT_CACHE) statements.delete(statements.keys().next().value!);
        statements.set(sql, statement);
      }
      return statement;
    },
  };
}

function sqliteDialect(file: string): Dialect {
  try {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    // The wait for another process's lock first: switching a new file to WAL while another
    // process migrates it otherwise fails at once with "database is locked".
    const database = new BetterSqlite3(file, { timeout: SQLITE_BUSY_TIMEOUT_MS });
    database.pragma('journal_mode = WAL');
    // In WAL mode NORMAL syncs at checkpoints, not on every commit: a commit survives a crash of
    // any process, and the file is never corrupted; a power loss may undo the last commits
    // (SQLite's documentation of synchronous). FULL's fsync per commit ran on the event loop
    // (better-sqlite3 is synchronous) and was a third of the API's SQLite time at 2,000 agents.
    database.pragma('synchronous = NORMAL');
    // From here on, waits for the lock are LockWaitingConnection's, off the event loop.
    database.pragma('busy_timeout = 0');
    return new ImmediateSqliteDialect(database);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot open SQLite store ${path.resolve(file)}: ${reason} (check the path in ROVER_STORE_URL)`, {
      cause: err,
    });
  }
}

function mysqlDialect(url: string): Dialect {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StoreUrlError(`store URL ${redactStoreUrl(url)} is not a valid URL; expected ${STORE_URL_FORMAT}`);
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!parsed.hostname || !database) {
    throw new StoreUrlError(
      `store URL ${redactStoreUrl(url)} needs a host and a database name; expected ${STORE_URL_FORMAT}`,
    );
  }
  const pool = createPool({
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : 3306,
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database,
    charset: 'utf8mb4',
    // BIGINT ids and millisecond timestamps come back as JS numbers, as on SQLite.
    supportBigNumbers: true,
    bigNumberStrings: false,
    decimalNumbers: true,
    connectionLimit: 10,
  });
  return new MysqlDialect({ pool });
}

/** Builds the dialect for a store URL; throws StoreUrlError naming the expected format. */
export function dialectForUrl(url: string): { dialect: Dialect; kind: StoreDialect } {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (!file) throw new StoreUrlError(`store URL "${url}" has no file path; expected ${STORE_URL_FORMAT}`);
    return { dialect: sqliteDialect(file), kind: 'sqlite' };
  }
  if (url.startsWith('mysql://')) return { dialect: mysqlDialect(url), kind: 'mysql' };
  throw new StoreUrlError(`unsupported store URL "${redactStoreUrl(url)}"; expected ${STORE_URL_FORMAT}`);
}
