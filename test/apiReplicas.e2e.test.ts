// A stateless API end to end: two API processes serve one job whose agents are spread over both
// (ROVER_API_URL lists them; node n starts at replica n % 2). One replica is SIGKILLed while the
// pre-flight node check runs, restarted, and the other is SIGKILLed while a rendezvous round is
// open (the round a killed trainer forced). Agents move to the live replica; the check and the
// round go on from the store. On SQLite, and on MySQL when ROVER_TEST_MYSQL_URL is set.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { isAlive, roverEntrypoint, spawnDetached, stopProcessGroup } from '../cluster/local/processes.ts';
import { freePort } from '../deploy/local/devServer.ts';
import { describeEachDialect } from '../store/testing.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { trainerPids, jobSpec } from './jobFixtures.ts';
import { startTestStack, type TestStack } from './stack.ts';

describeEachDialect('two API replicas', (dialect) => {
  let stack: TestStack;
  let ports: number[];
  let replicaB = 0;

  const startReplicaB = async () => {
    const logFile = path.join(stack.home, 'logs', 'api-b.log');
    const cmd = roverEntrypoint('api/main.ts');
    replicaB = spawnDetached(cmd.command, cmd.args, { env: { ...process.env, ...stack.env, ROVER_API_PORT: String(ports[1]) }, logFile }).pid;
    await waitUntil(async () => {
      if (!isAlive(replicaB)) throw new Error(`API replica B exited; log:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
      return (await fetch(`http://127.0.0.1:${ports[1]}/healthz`).catch(() => undefined))?.ok ?? false;
    }, 'API replica B to be ready', 90_000, 200);
  };

  beforeAll(async () => {
    ports = [await freePort(), await freePort()];
    stack = await startTestStack(`replicas-${dialect}`, {
      ROVER_API_PORT: String(ports[0]),
      ROVER_API_URL: ports.map((p) => `http://127.0.0.1:${p}`).join(','),
    }, { store: dialect });
    await Promise.all([stack.startWorker(), stack.startApi(), startReplicaB()]);
  }, 180_000);
  afterAll(async () => {
    if (replicaB) await stopProcessGroup(replicaB, 5000);
    await stack?.close();
  });

  it('finishes with every node passing its check and one forced round when each replica is SIGKILLed in turn', async () => {
    const name = `replicas-${dialect}`;
    const spec = jobSpec(stack.home, name, { nodes: 4, nproc: 1, steps: 100 });
    spec.spec.diagnosis = { nodeCheck: 'on', probeBytes: 256 * 1024, timeout: 20_000, excludeStragglers: false, relaunchStragglers: false };
    const handle = await submitJob(stack.client, spec, { taskQueue: stack.config.temporal.taskQueue });

    // Mid node check: the session started and its verdicts are not in yet.
    await waitUntil(async () => (await stack.store.nodeChecks.get(name))?.state.session, 'the node-check session to start', 120_000, 20);
    await stack.kill('api');
    await stack.startApi();

    // Mid rendezvous: a killed trainer forces round 2; while it is open, replica B dies.
    const node0 = await waitUntil(async () => {
      const node = await stack.store.nodes.get({ jobId: name, nodeId: 0, incarnation: 0 });
      return node?.pid && (node.step ?? 0) >= 5 ? node : undefined;
    }, 'node 0 to train', 120_000, 50);
    const [trainer] = await trainerPids(node0.pid!);
    expect(trainer, 'node 0 runs a trainer').toBeDefined();
    process.kill(trainer!, 'SIGKILL');
    await waitUntil(async () => {
      const latest = await stack.store.rendezvous.latestRound(name);
      return latest?.round === 2 && latest.status === 'open';
    }, 'round 2 to open', 60_000, 10);
    process.kill(-replicaB, 'SIGKILL');

    const result = await jobOutcome(handle);
    expect(result.phase, result.reason ?? '').toBe('SUCCEEDED');
    expect(result.nodeRelaunches).toBe(0);
    const events = await stack.store.nodeEvents.list(name, { kinds: ['node_check', 'round_opened'] });
    const verdicts = events.filter((e) => e.kind === 'node_check' && 'verdict' in (e.data as object));
    // Every node passes. A node whose probe went through the killed replica may be timed slower
    // than 2x the median and reported a straggler; with excludeStragglers off it stays in.
    const passed = verdicts.map((e) => { const d = e.data as { verdict: string; exclude: boolean }; return [e.nodeId, d.verdict === 'faulty' || d.exclude ? 'held' : 'passed']; });
    expect(passed).toEqual([[0, 'passed'], [1, 'passed'], [2, 'passed'], [3, 'passed']]);
    const rounds = events.filter((e) => e.kind === 'round_opened').map((e) => e.data as { round: number; cause: string });
    expect(rounds.map((r) => r.round)).toEqual([1, 2]);
    // Node 0's killed trainer, or a peer that died of it and reported first.
    expect(rounds[1]!.cause).toMatch(/^process failed on node \d/);
  }, 420_000);
});
