// What every repository shares: the connection or transaction to run on, the clock, JSON
// columns, and recognising duplicate-key errors on both dialects.
import type { Kysely, Transaction } from 'kysely';
import type { StoreDialect } from './connect.ts';
import type { Database } from './schema.ts';

export type Trx = Transaction<Database>;

export interface RepositoryContext {
  /** The store's connection, or a transaction when the repository is bound to one. */
  db: Kysely<Database>;
  dialect: StoreDialect;
  /** Milliseconds since the epoch; tests pass a fake clock. */
  now: () => number;
}

export abstract class Repository {
  protected readonly db: Kysely<Database>;
  protected readonly dialect: StoreDialect;
  protected readonly now: () => number;

  constructor(ctx: RepositoryContext) {
    this.db = ctx.db;
    this.dialect = ctx.dialect;
    this.now = ctx.now;
  }

  /** The executor for one call: the caller's transaction if given, else the bound one. */
  protected q(trx?: Trx): Kysely<Database> {
    return trx ?? this.db;
  }

  /** Like inTransaction, but a new transaction is a contendedTransaction (retried on MySQL deadlocks). */
  protected inContendedTransaction<T>(trx: Trx | undefined, fn: (trx: Trx) => Promise<T>): Promise<T> {
    const db = this.q(trx);
    if (db.isTransaction) return fn(db as Trx);
    return contendedTransaction(db, this.dialect, fn);
  }

  /** Runs fn in the caller's transaction if there is one, else in a new one. */
  protected inTransaction<T>(trx: Trx | undefined, fn: (trx: Trx) => Promise<T>): Promise<T> {
    const db = this.q(trx);
    if (db.isTransaction) return fn(db as Trx);
    return db.transaction().execute(fn);
  }
}

/** True when MySQL chose this transaction as a deadlock victim or its lock wait timed out. */
export function isLockConflict(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  const code = (err as { code: unknown }).code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
}

const CONFLICT_RETRIES = 20;

/**
 * Runs fn in a transaction that MySQL may abort under contention (hot rows, index gap locks):
 * READ COMMITTED (no gap locks) and retried, with jitter, when picked as a deadlock victim.
 * fn must be safe to run again. On SQLite, a plain transaction.
 */
export async function contendedTransaction<T>(db: Kysely<Database>, dialect: StoreDialect, fn: (trx: Trx) => Promise<T>): Promise<T> {
  if (dialect !== 'mysql') return db.transaction().execute(fn);
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.transaction().setIsolationLevel('read committed').execute(fn);
    } catch (err) {
      if (!isLockConflict(err) || attempt >= CONFLICT_RETRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * (attempt + 1)));
    }
  }
}

/** True for a primary-key or unique violation (SQLite SQLITE_CONSTRAINT_*, MySQL ER_DUP_ENTRY). */
export function isDuplicateKey(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  const code = (err as { code: unknown }).code;
  return (
    code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE'
  );
}

export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null);
}

export function fromJson(text: string): unknown {
  return JSON.parse(text) as unknown;
}

/** Aggregates (COUNT, MAX) may come back as bigint or string depending on driver. */
export function toNumber(value: unknown): number {
  return value === null || value === undefined ? 0 : Number(value);
}
