// When the store could not be reached. While the database is down (a MySQL server restarting, a
// lost network) the API cannot record heartbeats either, so a node's silence over that time says
// nothing about the node: activities that judge silence start counting again when the store answers.
import type { Store } from '../store/index.ts';

/** Error codes of a connection that failed or was lost, as opposed to a statement the database refused. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'PROTOCOL_CONNECTION_LOST']);

/** Whether `err` says the store's database could not be reached: mysql2 marks every connection-level error `fatal`. */
export function isStoreUnreachable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { fatal, code } = err as { fatal?: unknown; code?: unknown };
  return fatal === true || (typeof code === 'string' && UNREACHABLE_CODES.has(code));
}

export interface NotedStore {
  /** The same store; each call that fails because the database cannot be reached is noted. */
  store: Store;
  /** When a call last failed that way (`now()` of its failure); 0 if never. */
  lostAt: () => number;
}

/**
 * Wraps the store's repositories and transaction runners so that a call failing with an
 * unreachable database notes the time. Results and errors pass through unchanged.
 */
export function noteStoreOutages(store: Store, now: () => number): NotedStore {
  let lostAt = 0;
  const noted = <T>(pending: Promise<T>): Promise<T> =>
    pending.catch((err: unknown) => {
      if (isStoreUnreachable(err)) lostAt = now();
      throw err;
    });
  // A method called on its own object: its promise, if any, is noted.
  const call = (object: object, method: (...args: unknown[]) => unknown) => (...args: unknown[]) => {
    const result = method.apply(object, args);
    return result instanceof Promise ? noted(result) : result;
  };
  const methodsNoted = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(object, key) {
        const value: unknown = Reflect.get(object, key, object);
        return typeof value === 'function' ? call(object, value as (...args: unknown[]) => unknown) : value;
      },
    });
  const wrapped = new Proxy(store, {
    get(object, key) {
      const value: unknown = Reflect.get(object, key, object);
      // The Kysely instance stays as it is: what is built on it is not a promise until executed.
      if (key === 'db') return value;
      if (typeof value === 'function') return call(object, value as (...args: unknown[]) => unknown);
      return typeof value === 'object' && value !== null ? methodsNoted(value) : value;
    },
  });
  return { store: wrapped, lostAt: () => lostAt };
}
