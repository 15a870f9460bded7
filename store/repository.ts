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

  /** Runs fn in the caller's transaction if there is one, else in a new one. */
  protected inTransaction<T>(trx: Trx | undefined, fn: (trx: Trx) => Promise<T>): Promise<T> {
    const db = this.q(trx);
    if (db.isTransaction) return fn(db as Trx);
    return db.transaction().execute(fn);
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
