import { describe, expect, it } from 'vitest';
import type { Store } from '../store/index.ts';
import { isStoreUnreachable, noteStoreOutages } from './storeReachability.ts';

/** What mysql2 rejects with when the server is down: a connection-level error, marked fatal. */
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED', errno: -111, fatal: true });

describe('isStoreUnreachable', () => {
  it.each([
    ['a refused connection', refused(), true],
    ['a connection lost mid-query', Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }), true],
    ['a reset without the fatal mark', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true],
    ['a duplicate key', Object.assign(new Error("Duplicate entry '1' for key 'PRIMARY'"), { code: 'ER_DUP_ENTRY', errno: 1062 }), false],
    ['a deadlock', Object.assign(new Error('Deadlock found'), { code: 'ER_LOCK_DEADLOCK', errno: 1213 }), false],
    ['a plain error', new Error('job x is not in the store'), false],
    ['a string', 'ECONNREFUSED', false],
  ])('%s: %s', (_, err, unreachable) => {
    expect(isStoreUnreachable(err)).toBe(unreachable);
  });
});

describe('noteStoreOutages', () => {
  it('notes when a call failed to reach the database, not when the database refused it, and passes both through', async () => {
    let clock = 5;
    const fake = {
      nodes: { get: async (id: number) => (id === 1 ? Promise.reject(refused()) : id === 2 ? Promise.reject(new Error('no such node')) : { id }) },
      transaction: async () => Promise.reject(refused()),
    } as unknown as Store;
    const { store, lostAt } = noteStoreOutages(fake, () => clock);
    await expect(store.nodes.get({ jobId: 'j', nodeId: 0, incarnation: 0 } as never)).resolves.toBeDefined();
    await expect(store.nodes.get(2 as never)).rejects.toThrow('no such node');
    expect(lostAt()).toBe(0);
    await expect(store.nodes.get(1 as never)).rejects.toThrow(/ECONNREFUSED/);
    expect(lostAt()).toBe(5);
    clock = 9;
    await expect(store.transaction(async () => 1)).rejects.toThrow(/ECONNREFUSED/);
    expect(lostAt()).toBe(9);
  });
});
