// A MariaDB server of one's own, for a chaos stack that kills its store: its datadir, socket and
// port are the caller's, so a SIGKILL disturbs no other test. Started from the machine's mariadbd
// (bash deploy/local/mariadb.sh installs it); needs no vitest.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createConnection } from 'mysql2/promise';
import { freePort } from '../deploy/local/devServer.ts';

const MARIADBD = '/usr/sbin/mariadbd';
const INSTALL_DB = 'mariadb-install-db';
/** Small redo log and buffer pool: a test database of a few MB starts and recovers in well under a second. */
const INNODB = ['--innodb-buffer-pool-size=64M', '--innodb-log-file-size=16M'];

export interface PrivateMariadb {
  /** Store URL of the `rover` database, user rover:rover over TCP. */
  url: string;
  /** The server's command line: a restart with it recovers the datadir after a crash. */
  command: string;
  args: string[];
  /** Removes the datadir; call after the server has stopped. */
  remove(): void;
}

/**
 * Initialises a datadir in `dir` (once; a few seconds) and returns the command that serves it on a
 * free port of 127.0.0.1. As root mariadbd needs --user=root (a datadir under a private temp
 * folder is not the mysql user's to read); anyone else runs it as themselves, so the caller can
 * always signal it. An init file creates the database and user at every start (idempotent).
 */
export async function preparePrivateMariadb(dir: string): Promise<PrivateMariadb> {
  if (!existsSync(MARIADBD)) throw new Error(`${MARIADBD} not found: install MariaDB with bash deploy/local/mariadb.sh`);
  const datadir = path.join(dir, 'data');
  mkdirSync(dir, { recursive: true });
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  // --no-defaults first: the machine's my.cnf (its socket, port, datadir) is the shared server's.
  await promisify(execFile)(INSTALL_DB, ['--no-defaults', ...asRoot, `--datadir=${datadir}`, '--skip-name-resolve', '--skip-test-db', ...INNODB], {
    timeout: 120_000,
  }).catch((err: Error & { stderr?: string }) => {
    throw new Error(`${INSTALL_DB} failed for ${datadir}: ${err.message}\n${err.stderr ?? ''}`, { cause: err });
  });
  const initFile = path.join(dir, 'init.sql');
  writeFileSync(
    initFile,
    [
      'CREATE DATABASE IF NOT EXISTS rover CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;',
      "CREATE USER IF NOT EXISTS 'rover'@'127.0.0.1' IDENTIFIED BY 'rover';",
      "GRANT ALL PRIVILEGES ON rover.* TO 'rover'@'127.0.0.1';",
      '',
    ].join('\n'),
  );
  const port = await freePort();
  return {
    url: `mysql://rover:rover@127.0.0.1:${port}/rover`,
    command: MARIADBD,
    args: [
      '--no-defaults',
      ...asRoot,
      `--datadir=${datadir}`,
      `--socket=${path.join(dir, 'mariadbd.sock')}`,
      `--pid-file=${path.join(dir, 'mariadbd.pid')}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      '--skip-name-resolve',
      ...INNODB,
      `--init-file=${initFile}`,
    ],
    remove: () => rmSync(datadir, { recursive: true, force: true }),
  };
}

/** Whether the server at `url` answers a query (with the init file's user and database in place). */
export async function mysqlAnswers(url: string): Promise<boolean> {
  try {
    const connection = await createConnection({ uri: url, connectTimeout: 2000 });
    try {
      await connection.query('select 1');
      return true;
    } finally {
      await connection.end();
    }
  } catch {
    return false;
  }
}
