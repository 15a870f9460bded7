// A process waiting for another process's SQLite write lock keeps running its event loop: two
// API replicas share one SQLite file, and a replica whose loop stood still while it waited
// answered nothing else (heartbeats, long polls) for as long as the other held the lock.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { sql } from 'kysely';
import { afterEach, expect, it } from 'vitest';
import { openStore, type Store } from './index.ts';

/** Another process holding the file's write lock until told (a line on its stdin) to commit. */
const HOLDER = `
const Database = require('better-sqlite3');
const db = new Database(process.argv[1]);
db.exec('begin immediate');
db.prepare("insert into lock_probe values (1)").run();
console.log('locked');
process.stdin.once('data', () => { db.exec('commit'); console.log('released'); db.close(); process.exit(0); });
`;

let store: Store | undefined;
afterEach(async () => store?.close());

it('waits for another process’s write lock without stopping its own event loop, and then commits', async () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'rover-sqlite-lock-')), 'rover.db');
  store = await openStore(`sqlite:${file}`);
  await sql`create table lock_probe (n integer)`.execute(store.db);
  const holder = spawn(process.execPath, ['-e', HOLDER, file], { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: holder.stdout! })[Symbol.asyncIterator]();
  expect((await lines.next()).value).toBe('locked');

  // The holder lets go only when this process, while its write waits, asks it to: a process
  // whose loop stands still while it waits never asks, and its write times out.
  const write = store.transaction((tx) => sql`insert into lock_probe values (2)`.execute(tx.trx));
  setTimeout(() => holder.stdin!.write('go\n'), 200);
  await write;
  expect((await lines.next()).value).toBe('released');
  const { rows } = await sql<{ n: number }>`select n from lock_probe order by n`.execute(store.db);
  expect(rows.map((r) => r.n)).toEqual([1, 2]);
}, 20_000);
