// Warm standby processes on the real stack (issue 13): a job whose trainer imports a slow module
// named in spec.entrypoint.preload restarts after a SIGKILL on standbys that imported it before
// the kill, with the new round's variables, and `rover stop` leaves no standby behind.
// The trainer is test/trainers/warm_trainer.py; test/trainers/slow_import.py logs each import
// with its pid, so the test sees which process imported the module, and when.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { nodeLogPath } from '../cluster/local/localBackend.ts';
import { findNodeProcesses, isAlive } from '../cluster/local/processes.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { stopSignal } from '../workflows/job/messages.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { repoRoot } from './jobFixtures.ts';
import { startTestStack, type TestStack } from './stack.ts';

interface Started {
  pid: number;
  rank: string;
  world_size: string;
  local_rank: string;
  round: string;
  restart: string;
  imports: number[];
}
interface Imported {
  module: string;
  pid: number;
  at: number;
  rank: string | null;
}

const jsonLines = <T>(file: string): T[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T) : []);

describe('warm standby processes on the local backend', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack('warm standby');
    await Promise.all([stack.startWorker(), stack.startApi()]);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('restarts a killed trainer on standbys that imported the preload module before the kill, and stop leaves none behind', async () => {
    const name = 'warm-restart';
    const record = path.join(stack.home, `${name}-started.jsonl`);
    const importLog = path.join(stack.home, `${name}-imports.jsonl`);
    const parsed = parseJobSpec({
      metadata: { name, user: 'tester' },
      spec: {
        nodes: { min: 1, max: 1, initial: 1 },
        nprocPerNode: 2,
        entrypoint: {
          command: 'python3',
          args: ['test/trainers/warm_trainer.py', '--record', record, '--step-time', '0.05'],
          workdir: repoRoot,
          env: { SLOW_IMPORT_LOG: importLog, SLOW_IMPORT_SECONDS: '2', OMP_NUM_THREADS: '1' },
          preload: ['slow_import'],
        },
        faultTolerance: { maxProcessRestarts: 3, maxNodeRelaunches: 0, heartbeatInterval: '200ms', heartbeatTimeout: '10s' },
        rendezvous: { lastCallTimeout: '1s', joinTimeout: '60s' },
        checkpoint: { dir: path.join(stack.home, 'checkpoints', name) },
      },
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const handle = await submitJob(stack.client, parsed.spec, { taskQueue: stack.config.temporal.taskQueue });

    const first = await waitUntil(() => {
      const started = jsonLines<Started>(record);
      return started.length === 2 ? started : undefined;
    }, 'the first round to start both trainers', 60_000);
    // Once the trainers stepped, each rank warms its next standby: two more processes import the module.
    const standbys = await waitUntil(() => {
      const fresh = jsonLines<Imported>(importLog).filter((i) => !first.some((r) => r.pid === i.pid));
      return fresh.length === 2 ? fresh.map((i) => i.pid) : undefined;
    }, 'two standbys to import slow_import', 30_000);

    const killedAt = Date.now() / 1000;
    process.kill(first[0]!.pid, 'SIGKILL');
    const second = await waitUntil(() => {
      const next = jsonLines<Started>(record).filter((r) => r.round !== first[0]!.round);
      return next.length === 2 ? next : undefined;
    }, 'the next round to start both trainers', 30_000);

    // The restarted trainers are the standbys: they imported slow_import once, before the kill.
    expect(second.map((r) => r.pid).sort()).toEqual([...standbys].sort());
    for (const r of second) {
      expect(r.imports, `imports of pid ${r.pid}`).toHaveLength(1);
      expect(r.imports[0]).toBeLessThan(killedAt);
    }
    // And they see the new round's variables, which did not exist while they imported.
    const round = Number(second[0]!.round);
    expect(round).toBeGreaterThan(Number(first[0]!.round));
    expect(second.map((r) => [r.rank, r.local_rank, r.world_size, r.round, r.restart]).sort()).toEqual([
      ['0', '0', '2', String(round), String(round - 1)],
      ['1', '1', '2', String(round), String(round - 1)],
    ]);
    expect(jsonLines<Imported>(importLog).filter((i) => standbys.includes(i.pid)).map((i) => i.rank)).toEqual([null, null]);
    const agentLog = readFileSync(nodeLogPath(stack.home, name, 0), 'utf8');
    expect(agentLog).toMatch(new RegExp(`"round":${round}.*"warm":\\[0,1\\].*started trainers`));
    expect(await stack.store.nodeEvents.list(name, { kinds: ['standby_failed'] })).toEqual([]);

    // Both ranks step, then the stop: no trainer and no standby of the job lives on.
    await waitUntil(async () => ((await stack.store.nodes.listByJob(name))[0]?.step ?? 0) >= 3, 'the restarted trainers stepping', 30_000, 200);
    const everyPython = await waitUntil(() => {
      const pids = jsonLines<Imported>(importLog).map((i) => i.pid);
      return pids.length === 6 ? pids : undefined;
    }, 'the next standbys to import slow_import', 30_000);
    await handle.signal(stopSignal, { reason: 'test over' });
    expect((await jobOutcome(handle)).phase).toBe('STOPPED');
    for (const pid of everyPython) expect(isAlive(pid), `python ${pid}`).toBe(false);
    expect(findNodeProcesses({ jobId: name, nodeId: 0, incarnation: 0, home: stack.config.home })).toEqual([]);
  });
});
