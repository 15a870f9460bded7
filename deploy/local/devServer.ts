// Starts the official Temporal dev server with Rover's search attributes registered.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';

import { ROVER_SEARCH_ATTRIBUTES } from '../../common/searchAttributes.ts';

/** The CLI spells search attribute types in PascalCase: KEYWORD_LIST → KeywordList. */
function cliTypeName(type: string): string {
  return type.toLowerCase().replace(/(^|_)([a-z])/g, (_m, _sep: string, c: string) => c.toUpperCase());
}

export interface DevServerOptions {
  cli: string;
  port: number;
  uiPort: number;
  namespace?: string;
  /** Persistent SQLite file; omitted → in-memory (tests). */
  dbFile?: string;
  headless?: boolean;
  logFile: string;
  /** Extra `--dynamic-config-value` pairs, e.g. to force continue-as-new in tests. */
  dynamicConfig?: Record<string, string | number | boolean>;
  /** Start in its own process group (outlives the parent, for `rover up --detach`). */
  detached?: boolean;
  readyTimeoutMs?: number;
}

export interface DevServer {
  process: ChildProcess;
  address: string;
  uiUrl?: string;
}

export type DevServerFlags = Pick<DevServerOptions, 'port' | 'uiPort' | 'namespace' | 'dbFile' | 'headless' | 'dynamicConfig'>;

export function devServerArgs(o: DevServerFlags): string[] {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(o.port), '--log-level', 'warn'];
  args.push('--namespace', o.namespace ?? 'default');
  if (o.dbFile) args.push('--db-filename', o.dbFile, '--sqlite-pragma', 'journal_mode=WAL');
  if (o.headless) args.push('--headless');
  else args.push('--ui-port', String(o.uiPort), '--ui-ip', '127.0.0.1');
  for (const key of ROVER_SEARCH_ATTRIBUTES) args.push('--search-attribute', `${key.name}=${cliTypeName(key.type)}`);
  for (const [key, value] of Object.entries(o.dynamicConfig ?? {})) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  return args;
}

/** Waits until the frontend answers a health check, or the deadline passes. */
export async function waitForTemporal(address: string, timeoutMs: number, exited?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no attempt';
  while (Date.now() < deadline) {
    const exitReason = exited?.();
    if (exitReason) throw new Error(`temporal dev server exited before it was ready: ${exitReason}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.healthService.check({});
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`temporal dev server at ${address} not ready within ${timeoutMs} ms: ${lastError}`);
}

export async function startDevServer(o: DevServerOptions): Promise<DevServer> {
  mkdirSync(path.dirname(o.logFile), { recursive: true });
  if (o.dbFile) mkdirSync(path.dirname(o.dbFile), { recursive: true });
  const log = openSync(o.logFile, 'a');
  const child = spawn(o.cli, devServerArgs(o), { stdio: ['ignore', log, log], detached: o.detached ?? false });
  closeSync(log);
  let exitReason: string | undefined;
  child.once('exit', (code, signal) => {
    exitReason = `exit code ${code ?? 'none'}, signal ${signal ?? 'none'} (see ${o.logFile})`;
  });
  child.once('error', (err) => {
    exitReason = err.message;
  });
  const address = `127.0.0.1:${o.port}`;
  try {
    await waitForTemporal(address, o.readyTimeoutMs ?? 60_000, () => exitReason);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return { process: child, address, uiUrl: o.headless ? undefined : `http://127.0.0.1:${o.uiPort}` };
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
