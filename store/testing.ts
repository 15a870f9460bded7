// Test support: run a suite against every store dialect, each test on a fresh, empty database.
// SQLite uses a temp file; MySQL uses a new database created through ROVER_TEST_MYSQL_URL
// (start one with `bash deploy/local/mariadb.sh`) and dropped after the test.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it } from 'vitest';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import { openStore, redactStoreUrl, type OpenStoreOptions, type Store, type StoreDialect } from './index.ts';

export const MYSQL_URL_ENV = 'ROVER_TEST_MYSQL_URL';

/** A valid, defaulted job spec (python3 train.py on `nodes` local nodes), for the job rows tests write. */
export function testJobSpec(nodes = 1): JobSpec {
  const parsed = parseJobSpec({ metadata: { name: 'test-job', user: 'ada' }, spec: { nodes: { min: nodes, max: nodes }, entrypoint: { command: 'python3', args: ['train.py'] } } });
  if (!parsed.ok) throw new Error(`test spec: ${JSON.stringify(parsed.errors)}`);
  return parsed.spec;
}

export interface StoreHarness {
  dialect: StoreDialect;
  /** URL of a new, empty database, removed after the current test. */
  freshUrl(): Promise<string>;
  /** Opens a store (on a fresh database unless `url` is given); closed after the current test. */
  open(opts?: OpenStoreOptions & { url?: string }): Promise<Store>;
}

/** A new, empty MySQL database on the server of `baseUrl`; `drop` removes it. */
export async function createMysqlDatabase(baseUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  // Generated here, never from input: safe to splice into DDL.
  const name = `rover_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = await createConnection(baseUrl).catch((err: Error) => {
    throw new Error(`cannot connect to ${MYSQL_URL_ENV}=${redactStoreUrl(baseUrl)}: ${err.message}`, { cause: err });
  });
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  } finally {
    await admin.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const conn = await createConnection(baseUrl);
      try {
        await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await conn.end();
      }
    },
  };
}

function harness(dialect: StoreDialect, mysqlUrl: string | undefined): StoreHarness {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    // Newest first: stores close before their database goes away.
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function freshUrl(): Promise<string> {
    if (dialect === 'sqlite') {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rover-store-'));
      cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
      return `sqlite:${path.join(dir, 'nested', 'rover.db')}`;
    }
    if (!mysqlUrl) throw new Error(`MySQL required: set ${MYSQL_URL_ENV}`);
    const { url, drop } = await createMysqlDatabase(mysqlUrl);
    cleanups.push(drop);
    return url;
  }

  return {
    dialect,
    freshUrl,
    async open(opts = {}) {
      const store = await openStore(opts.url ?? (await freshUrl()), opts);
      cleanups.push(() => store.close());
      return store;
    },
  };
}

/**
 * Declares `body` once per dialect, given the dialect and (for MySQL) ROVER_TEST_MYSQL_URL.
 * Without that variable the MySQL copy fails in CI (CI=true) and is skipped, with a warning,
 * elsewhere. For suites that open their own stores or stacks (test/stack.ts's `store` option).
 */
export function describeEachDialect(title: string, body: (dialect: StoreDialect, mysqlUrl: string | undefined) => void): void {
  const mysqlUrl = process.env[MYSQL_URL_ENV] || undefined;
  const dialects: StoreDialect[] = ['sqlite', 'mysql'];
  describe.each(dialects)(`${title} (%s)`, (dialect) => {
    if (dialect === 'mysql' && !mysqlUrl) {
      if (process.env.CI === 'true') {
        it('has a MySQL database to test against', () => {
          throw new Error(`MySQL required in CI: set ${MYSQL_URL_ENV}`);
        });
        return;
      }
      console.warn(
        `SKIPPING MySQL store tests "${title}": set ${MYSQL_URL_ENV} ` +
          '(e.g. export ROVER_TEST_MYSQL_URL=$(bash deploy/local/mariadb.sh | tail -1))',
      );
      describe.skip('without MySQL', () => body(dialect, mysqlUrl));
      return;
    }
    body(dialect, mysqlUrl);
  });
}

/** Declares `body`'s tests once per dialect (as describeEachDialect), each test on a fresh, empty database. */
export function describeEachStore(title: string, body: (store: StoreHarness) => void): void {
  describeEachDialect(title, (dialect, mysqlUrl) => body(harness(dialect, mysqlUrl)));
}

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * Runs `script` in one Node process per arg, all released at the same moment once loaded:
 * each opens the store at `url` (logging to stdout), runs the script with `store` and `arg` in
 * scope, and closes it. Rejects unless every process exits 0; resolves with their stdouts.
 */
export async function runInProcesses(url: string, script: string, args: string[]): Promise<string[]> {
  const code = `
    const { openStore } = await import('./store/index.ts');
    const [url, arg] = process.argv.slice(1);
    console.log('ready');
    await new Promise((resolve) => process.stdin.once('data', resolve));
    const store = await openStore(url, { log: (m) => console.log(m) });
    ${script}
    await store.close();
    process.exit(0);`;
  const children = args.map((arg) =>
    spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, url, arg], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const outputs = children.map(() => '');
  const ready = children.map(
    (child, i) =>
      new Promise<void>((resolve) =>
        child.stdout.on('data', (chunk: Buffer) => {
          outputs[i] += chunk.toString();
          if (outputs[i]!.startsWith('ready')) resolve();
        }),
      ),
  );
  const codes = children.map((child) => new Promise<number | null>((resolve) => child.once('exit', resolve)));
  await Promise.race([Promise.all(ready), Promise.all(codes)]);
  for (const child of children) child.stdin.end('go\n');
  const exitCodes = await Promise.all(codes);
  if (exitCodes.some((c) => c !== 0)) {
    throw new Error(`store processes exited with ${exitCodes.join(', ')}; output:\n${outputs.join('\n')}`);
  }
  return outputs.map((o) => o.replace(/^ready\n/, ''));
}
