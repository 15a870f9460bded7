// The agent with spec.entrypoint.preload against a fake API: its trainers run on warm
// standbys (agent/standby.ts), a preload that cannot import is reported once as a
// standby_failed event while the trainers start cold, and no standby outlives the agent.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from './agent.ts';
import { HttpApiClient } from './apiClient.ts';
import type { AgentSettings } from './settings.ts';
import { FakeApi, lineSink, pidAlive } from './testing.ts';

const WARM_TRAINER = fileURLToPath(new URL('../test/trainers/warm_trainer.py', import.meta.url));

let api: FakeApi;
let dir: string;
beforeEach(async () => {
  api = await new FakeApi().start();
  dir = mkdtempSync(path.join(tmpdir(), 'rover-agent-standby-'));
});
afterEach(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

const jsonLines = <T>(file: string): T[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T) : []);

function runAgent(preload: string[]) {
  const settings: AgentSettings = {
    apiUrls: [api.url],
    job: api.job,
    node: 0,
    incarnation: 0,
    token: api.token,
    nprocPerNode: 2,
    entrypoint: {
      command: 'python3',
      args: [WARM_TRAINER, '--record', path.join(dir, 'started.jsonl'), '--steps', '3'],
      env: { SLOW_IMPORT_LOG: path.join(dir, 'imports.jsonl'), SLOW_IMPORT_SECONDS: '0.3' },
      workdir: dir,
      preload,
    },
    maxProcessRestarts: 0,
    heartbeatIntervalMs: 100,
    shutdownGraceMs: 5000,
    host: '127.0.0.1',
    logLevel: 'silent',
    checkpointDir: path.join(dir, 'checkpoints'),
    startJitterMs: 0,
  };
  const agent = new Agent({
    settings,
    api: new HttpApiClient({ baseUrls: settings.apiUrls, job: settings.job, token: settings.token }),
    log: pino({ level: 'silent' }),
    output: { stdout: lineSink().stream, stderr: lineSink().stream },
    backoff: { baseMs: 5, capMs: 50 },
  });
  return agent.run();
}

describe('Agent with warm standbys', () => {
  it('runs its trainers on the standbys it warmed at start, and leaves none behind', async () => {
    expect(await runAgent(['slow_import'])).toBe(0);
    const started = jsonLines<{ pid: number; rank: string; imports: number[]; started: number }>(path.join(dir, 'started.jsonl'));
    expect(started.map((r) => r.rank).sort()).toEqual(['0', '1']);
    const imported = jsonLines<{ pid: number; rank: string | null }>(path.join(dir, 'imports.jsonl'));
    for (const r of started) {
      // The trainer is a standby: it imported the module once, without the round's RANK.
      expect(r.imports).toHaveLength(1);
      expect(imported.find((i) => i.pid === r.pid)?.rank).toBeNull();
    }
    expect(imported.map((i) => i.pid).filter(pidAlive)).toEqual([]);
    expect(api.events.filter((e) => e.kind === 'standby_failed')).toEqual([]);
  });

  it('reports a preload that cannot import once, as standby_failed, and trains cold', async () => {
    expect(await runAgent(['no_such_module_here'])).toBe(0);
    expect(jsonLines(path.join(dir, 'started.jsonl'))).toHaveLength(2);
    const failed = api.events.filter((e) => e.kind === 'standby_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.data).toMatchObject({ preload: ['no_such_module_here'], reason: expect.stringContaining('ModuleNotFoundError') });
  });
});
