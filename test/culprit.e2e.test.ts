// One killed trainer must not fail the job: its peers die of it with look-alike tracebacks, and
// only the killed process is the job's failure. Also: a job whose script is missing fails fast
// with python's own words instead of burning its budgets.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { nodeLogPath } from '../cluster/local/localBackend.ts';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import { statusQuery, stopSignal } from '../workflows/job/messages.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { startTestStack, type TestStack } from './stack.ts';
import { trainerPids, repoRoot } from './jobFixtures.ts';

function spec(name: string, entrypoint: { command: string; args: string[] }, faultTolerance: Record<string, number> = {}): JobSpec {
  const parsed = parseJobSpec({
    metadata: { name, user: 'tester' },
    spec: {
      nodes: { min: 2, max: 2, initial: 2 },
      nprocPerNode: 2,
      entrypoint: { ...entrypoint, workdir: repoRoot },
      faultTolerance: { maxProcessRestarts: 3, maxNodeRelaunches: 3, heartbeatInterval: '200ms', heartbeatTimeout: '10s', ...faultTolerance },
      rendezvous: { lastCallTimeout: '2s', joinTimeout: '60s' },
    },
  });
  if (!parsed.ok) throw new Error(`bad test spec: ${JSON.stringify(parsed.errors)}`);
  return parsed.spec;
}

describe('the culprit, not the victims', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack('culprit');
    await Promise.all([stack.startWorker(), stack.startApi()]);
  });
  afterAll(async () => {
    await stack?.close();
  });
  const submit = (s: JobSpec) => submitJob(stack.client, s, { taskQueue: stack.config.temporal.taskQueue });
  const failures = async (job: string) =>
    (await stack.store.nodeEvents.listAfter(job, 0, 10_000))
      .filter((e) => e.kind === 'process_failed')
      .map((e) => ({ node: e.nodeId, ...(e.data as { role: string; signal: string | null; exitCode: number | null; stderrTail?: string }) }));

  it.each([
    ['python directly', 'peer-kill', (args: string[]) => ({ command: 'python3', args })],
    ['behind an sh -c wrapper', 'peer-kill-wrapped', (args: string[]) => ({ command: 'sh', args: ['-c', `python3 ${args.join(' ')}; exit $?`] })],
  ])('SIGKILL of rank 0 (%s) while its peers all-reduce through it: SUCCEEDED, only node 0 charged', async (_how, name, entrypoint) => {
    const markers = mkdtempSync(path.join(stack.home, 'markers-'));
    const handle = await submit(spec(name, entrypoint(['test/trainers/peer_reset.py', '30', markers, '--kill-rank0-at', '8'])));
    const result = await jobOutcome(handle);
    expect(result.phase, result.reason ?? '').toBe('SUCCEEDED');
    const seen = await failures(name);
    const culprits = seen.filter((f) => f.role === 'culprit');
    // Reports race; a victim charged first is taken back when the kill arrives (supersedes).
    const final = culprits.filter((c) => !seen.some((f) => (f as { supersedes?: { node: number } }).supersedes?.node === c.node && f !== c));
    expect(final.map((c) => [c.node, c.signal ?? c.exitCode])).toEqual([[0, name === 'peer-kill' ? 'SIGKILL' : 137]]);
    // The peers died with tracebacks (their node may have been told to restart before it saw them
    // end, and then reports nothing of them: the logs have them either way).
    const logs = [0, 1].map((n) => readFileSync(nodeLogPath(stack.home, name, n), 'utf8')).join('\n');
    expect(logs.includes('ConnectionResetError'), 'the peers did die with tracebacks').toBe(true);
    expect(result.nodes.map((n) => [n.id, n.restarts, n.status])).toEqual([[0, 1, 'succeeded'], [1, 0, 'succeeded']]);
    expect(result.nodeRelaunches).toBe(0);
    // TORCHELASTIC_RESTART_COUNT is one value per round on every rank.
    const starts = [0, 1].flatMap((n) => readFileSync(nodeLogPath(stack.home, name, n), 'utf8').match(/PEER_START rank=\d round=\d+ restart_count=\d+/g) ?? []);
    const byRound = new Map<string, Set<string>>();
    for (const line of starts) {
      const [, round, count] = /round=(\d+) restart_count=(\d+)/.exec(line)!;
      byRound.set(round!, new Set([...(byRound.get(round!) ?? []), count!]));
    }
    expect([...byRound.values()].every((counts) => counts.size === 1), JSON.stringify([...byRound])).toBe(true);
  });

  it('a survivor pays nothing for a peer node lost four times (maxProcessRestarts 3)', async () => {
    const name = 'peer-lost';
    const handle = await submit(spec(name, { command: 'python3', args: ['test/trainers/peer_reset.py', '100000', stack.home] }, { maxNodeRelaunches: 6 }));
    const status = () => handle.query(statusQuery);
    for (let loss = 0; loss < 4; loss++) {
      // Training in a round that both nodes joined, node 1 at its `loss`-th incarnation.
      const node1 = await waitUntil(async () => {
        const s = await status();
        const nodes = await stack.store.nodes.listByJob(name, { statuses: ['running'] });
        const n1 = nodes.find((n) => n.nodeId === 1 && n.incarnation === loss);
        return s.phase === 'RUNNING' && nodes.length === 2 && nodes.every((n) => (n.step ?? 0) >= 3) ? n1 : undefined;
      }, `node 1 incarnation ${loss} training`, 90_000, 200);
      // The whole node goes, as a machine would: its agent and every trainer.
      const trainers = await trainerPids(node1.pid!);
      for (const pid of [node1.pid!, ...trainers]) {
        try { process.kill(-pid, 'SIGKILL'); } catch { process.kill(pid, 'SIGKILL'); }
      }
    }
    await waitUntil(async () => (await stack.store.nodes.listByJob(name, { statuses: ['running'] })).some((n) => n.nodeId === 1 && n.incarnation === 4), 'the fifth incarnation of node 1', 90_000, 200);
    await handle.signal(stopSignal, { reason: 'enough' });
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('STOPPED');
    expect(result.nodeRelaunches).toBe(4);
    const node0 = result.nodes.find((n) => n.id === 0)!;
    expect([node0.incarnation, node0.restarts], 'node 0 was never relaunched nor charged').toEqual([0, 0]);
    expect((await stack.store.nodes.get({ jobId: name, nodeId: 0, incarnation: 0 }))?.processRestarts).toBe(0);
  });

  it('a script that does not exist fails the job after two tries, with python\'s line in the reason', async () => {
    const handle = await submit(spec('no-script', { command: 'python3', args: ['missing_train.py'] }));
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('FAILED');
    expect(result.reason).toMatch(/can't open file .*missing_train\.py/);
    expect(result.processRestarts).toBeLessThanOrEqual(2);
    expect(result.nodeRelaunches).toBe(0);
    expect(result.nodes.some((n) => n.lastError?.includes("can't open file")), 'rover status shows the stderr line').toBe(true);
    expect(result.nodes.filter((n) => n.status === 'running'), 'no node listed running after the end').toEqual([]);
  });

  it('runs a spec beside its train.py submitted from the parent folder, and rover status names a failure\'s stderr line', async () => {
    const parent = mkdtempSync(path.join(stack.home, 'user-'));
    mkdirSync(path.join(parent, 'myjob'));
    writeFileSync(path.join(parent, 'myjob', 'train.py'), [
      'import os, sys',
      'marker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "failed-once-" + os.environ["RANK"])',
      'if not os.path.exists(marker):',
      '    open(marker, "w").close()',
      '    sys.exit("train.py: the data folder is not mounted yet")',
      'for step in range(1, 4):',
      '    print(f"ROVER_STEP {step}", flush=True)',
      '',
    ].join('\n'));
    writeFileSync(path.join(parent, 'myjob', 'job.yaml'), [
      'metadata: {name: beside}',
      'spec:',
      '  nodes: {min: 1, max: 1, initial: 1}',
      '  entrypoint: {command: python3, args: [train.py]}',
      '  faultTolerance: {heartbeatInterval: 200ms, heartbeatTimeout: 10s}',
      '  rendezvous: {lastCallTimeout: 1s}',
      '',
    ].join('\n'));
    const rover = (...args: string[]) =>
      promisify(execFile)(process.execPath, [path.join(repoRoot, 'bin/rover.js'), ...args], { cwd: parent, env: { ...process.env, ...stack.env } });
    await rover('submit', 'myjob/job.yaml', '--wait');
    const shown = (await rover('status', 'beside')).stdout;
    expect(shown).toMatch(/phase:\s+SUCCEEDED/);
    expect(shown).toContain('node 0 last failure: train.py: the data folder is not mounted yet');
  });
});
