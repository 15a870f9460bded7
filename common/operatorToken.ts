// The operator token: ROVER_OPERATOR_TOKEN, else a token file in the stack's home. The file is
// what lets `rover up` (worker, API, Brain, and the CLI on the same machine, one ROVER_HOME)
// work with no setup: the first of Rover's servers to start makes it (0600), the others and the
// CLI read it. Where processes do not share a home (Kubernetes) set ROVER_OPERATOR_TOKEN for all
// of them (deploy/kubernetes/config.yaml), or each would make its own.
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RoverConfig } from './config.ts';

export function operatorTokenFile(home: string): string {
  return path.join(home, 'operator-token');
}

function readTokenFile(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The config with its operator token filled in: the variable's, else the home's token file's.
 * `create` (Rover's servers and worker): make the file when there is none, with 256 random bits.
 * It is written whole under a private name and then hard-linked into place, which fails when the
 * file exists: two processes starting at once both end up with the first one's token, and no
 * reader ever sees a half-written file.
 */
export function withOperatorToken(config: RoverConfig, { create }: { create: boolean }): RoverConfig {
  if (config.operatorToken) return config;
  const file = operatorTokenFile(config.home);
  let token = readTokenFile(file);
  if (!token && create) {
    mkdirSync(config.home, { recursive: true });
    const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(draft, `${randomBytes(32).toString('base64url')}\n`, { flag: 'wx', mode: 0o600 });
    try {
      linkSync(draft, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      rmSync(draft, { force: true });
    }
    token = readTokenFile(file);
  }
  return { ...config, operatorToken: token };
}
