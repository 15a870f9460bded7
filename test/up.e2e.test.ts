// `rover up` brings the whole embedded stack up with the demo job, and Ctrl-C leaves nothing behind,
// also when its output goes through a pipe that the same Ctrl-C closes (`rover up | tee up.log`);
// `rover up --detach` returns a stack that is ready, and `rover down` stops it.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { describe, expect, inject, it } from 'vitest';
import { isAlive, stopProcessGroup } from '../cluster/local/processes.ts';
import { freePort } from '../deploy/local/devServer.ts';
import { startStack, stopStack } from '../cli/up.ts';
import { loadConfig } from '../common/config.ts';
import { statusQuery } from '../workflows/job/messages.ts';
import { waitUntil } from './helpers.ts';
import { childPids, repoRoot } from './jobFixtures.ts';

const run = promisify(execFile);

/** The variables of a stack of its own: `home`, the suite's temporal CLI and a free port for every listener. */
async function ownStack(home: string): Promise<Record<string, string>> {
  return {
    ROVER_HOME: home,
    TEMPORAL_CLI: inject('temporalCli'),
    ROVER_TEMPORAL_PORT: String(await freePort()),
    ROVER_UI_PORT: String(await freePort()),
    ROVER_API_PORT: String(await freePort()),
    ROVER_BRAIN_PORT: String(await freePort()),
    ROVER_WORKER_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
  };
}

/** `rover …` as a user runs it against a stack of its own: `home` and free ports. */
async function roverIn(home: string, extraEnv: Record<string, string> = {}) {
  const env = { ...process.env, ...(await ownStack(home)), ...extraEnv };
  return (...args: string[]) => run(process.execPath, [path.join(repoRoot, 'bin/rover.js'), ...args], { env });
}

describe('rover up', () => {
  it('starts Temporal with the Web UI and Rover attributes, runs the demo job, and Ctrl-C of `rover up | tee` stops every process', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'rover-up-'));
    const [temporalPort, uiPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    // A shell pipeline in a process group of its own, as a terminal's foreground job: Ctrl-C
    // sends SIGINT to the group, so tee dies with rover up and every later line hits EPIPE.
    const up = spawn(
      'bash',
      ['-c', '"$@" | tee "$ROVER_UP_LOG"', 'bash', process.execPath, path.join(repoRoot, 'bin/rover.js'), 'up', '--temporal-port', String(temporalPort), '--ui-port', String(uiPort), '--api-port', String(apiPort)],
      {
        env: { ...process.env, ROVER_HOME: home, ROVER_UP_LOG: path.join(home, 'up.log'), TEMPORAL_CLI: inject('temporalCli'), ROVER_WORKER_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`, ROVER_BRAIN_PORT: String(await freePort()) },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    );
    const ctrlC = () => process.kill(-up.pid!, 'SIGINT');
    let output = '';
    up.stdout.on('data', (d: Buffer) => (output += d.toString()));
    up.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
    try {
      await waitUntil(() => output.includes('press Ctrl-C'), `rover up to be running; output so far:\n${output}`, 120_000, 200);
      expect(output).toContain(`Temporal Web UI: http://127.0.0.1:${uiPort}`);
      // Moved ports: it says how to point other commands at them.
      expect(output).toContain(`export ROVER_TEMPORAL_PORT=${temporalPort} ROVER_UI_PORT=${uiPort} ROVER_API_PORT=${apiPort}`);
      expect(output).toContain('demo job submitted');

      const ui = await fetch(`http://127.0.0.1:${uiPort}/`);
      expect(ui.status).toBe(200);
      const { stdout } = await run(inject('temporalCli'), ['operator', 'search-attribute', 'list', '--address', `127.0.0.1:${temporalPort}`]);
      for (const name of ['RoverJobName', 'RoverJobState', 'RoverWorldSize', 'RoverUser', 'RoverBackend']) expect(stdout).toContain(name);

      const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
      const demo = new Client({ connection }).workflow.getHandle('job-demo');
      const training = await waitUntil(async () => {
        const s = await demo.query(statusQuery);
        return s.phase === 'RUNNING' || s.phase === 'SUCCEEDED' ? s : undefined;
      }, 'the demo job to train', 90_000, 250);
      await connection.close();

      const stack = JSON.parse(readFileSync(path.join(home, 'up.json'), 'utf8')) as { processes: { pid: number }[] };
      const agents = training.nodes.flatMap((n) => (n.pid === null ? [] : [n.pid]));
      const trainers = (await Promise.all(agents.map(childPids))).flat();
      const pids = [...stack.processes.map((p) => p.pid), ...agents, ...trainers];
      expect(stack.processes).toHaveLength(5); // temporal, worker, api, brain-worker, brain
      const pipeline = await childPids(up.pid!); // rover up and tee

      ctrlC();
      await exited;
      await waitUntil(() => !pipeline.some(isAlive), 'rover up and tee to exit', 60_000, 100);
      for (const pid of pids) expect(isAlive(pid), `pid ${pid} still alive after Ctrl-C`).toBe(false);
      // An orderly stop, not a crash on the closed pipe: the stack file is gone with the stack.
      expect(existsSync(path.join(home, 'up.json'))).toBe(false);
      expect(output).not.toContain('EPIPE');
    } finally {
      if (up.exitCode === null) {
        ctrlC();
        await exited;
      }
      // Whatever a failed run left behind.
      const file = path.join(home, 'up.json');
      if (existsSync(file)) {
        for (const p of (JSON.parse(readFileSync(file, 'utf8')) as { processes: { pid: number }[] }).processes) await stopProcessGroup(p.pid, 1000);
      }
    }
  });

  it('rover brain status right after rover up --detach exits 0 and lists every configured source as read', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'rover-up-brain-'));
    const teamDir = path.join(home, 'team-configs');
    mkdirSync(teamDir);
    writeFileSync(path.join(teamDir, 'team.yaml'), 'name: team\npriority: 10\nconfigure: {optimizer: {margin: 0.3}}\n');
    const rover = await roverIn(home, { ROVER_BRAIN_SOURCES: `default=yaml:${path.join(repoRoot, 'brain/defaults')},team=yaml:${teamDir}` });
    try {
      await rover('up', '--detach', '--no-demo');
      // At once, as a user would: `up` said the stack is running, so the Brain's picture is complete.
      // `run` rejects on a non-zero exit.
      const { stdout } = await rover('brain', 'status');
      expect(stdout).toMatch(/^default\s+running\s+1\s+1\s/m); // version 1, 1 configuration
      expect(stdout).toMatch(/^team\s+running\s+1\s+1\s/m);
    } finally {
      await rover('down').catch(() => undefined);
    }
  });

  it('rover down costs a job no relaunch budget and its nodes come back on rover up; down --keep-jobs leaves them training', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'rover-down-'));
    const rover = await roverIn(home);
    const spec = path.join(home, 'steady.yaml');
    writeFileSync(spec, [
      'metadata: {name: steady}',
      'spec:',
      '  nodes: {min: 2, max: 2, initial: 2}',
      '  nprocPerNode: 1',
      `  entrypoint: {command: python3, args: [${path.join(repoRoot, 'examples/trainer.py')}, --steps, '100000', --step-time, '0.05']}`,
      '  faultTolerance: {maxNodeRelaunches: 0, heartbeatInterval: 200ms, heartbeatTimeout: 5s}',
      '  rendezvous: {lastCallTimeout: 1s}',
      '',
    ].join('\n'));
    const status = async () => JSON.parse((await rover('status', 'steady', '--json')).stdout) as { phase: string; nodeRelaunches: number; nodes: { id: number; incarnation: number; pid: number | null; status: string }[] };
    const trainingAt = (incarnation: number) =>
      waitUntil(async () => {
        const s = await status();
        return s.phase === 'RUNNING' && s.nodes.every((n) => n.incarnation === incarnation && n.status === 'running') ? s : undefined;
      }, `job steady training as incarnation ${incarnation}`, 120_000, 500);
    try {
      await rover('up', '--detach', '--no-demo');
      await rover('submit', spec);
      await trainingAt(0);
      await rover('down');
      await rover('up', '--detach', '--no-demo');
      // The nodes went with the stack and come back as their next incarnation, for free.
      const back = await trainingAt(1);
      expect(back.nodeRelaunches).toBe(0);

      const agents = back.nodes.map((n) => n.pid!);
      await rover('down', '--keep-jobs');
      for (const pid of agents) expect(isAlive(pid), `agent ${pid} keeps running through rover down --keep-jobs`).toBe(true);
      await rover('up', '--detach', '--no-demo');
      const kept = await trainingAt(1);
      expect(kept.nodes.map((n) => n.pid)).toEqual(agents);
      expect(kept.nodeRelaunches).toBe(0);
      await rover('stop', 'steady');
      await waitUntil(async () => (await status()).phase === 'STOPPED', 'the job to stop', 60_000, 500);
    } finally {
      await rover('down').catch(() => undefined);
    }
  }, 240_000); // three stack starts, each until the Brain has read its sources

  it("a stack started from a config, as the benchmarks start theirs, listens where the config says, the worker's metrics too", async () => {
    const own = await ownStack(mkdtempSync(path.join(os.tmpdir(), 'rover-up-config-')));
    const metrics = own.ROVER_WORKER_METRICS_ADDRESS!;
    // The caller's environment names no ports: only the config does.
    const { ROVER_WORKER_METRICS_ADDRESS: _unset, ...env } = process.env;
    const config = loadConfig({ ...env, ...own });
    try {
      await startStack(config);
      const scraped = await waitUntil(async () => {
        const res = await fetch(`http://${metrics}/metrics`).catch(() => undefined);
        return res?.ok ? res.text() : undefined;
      }, `the worker's metrics on ${metrics}`, 30_000, 200);
      expect(scraped).toContain('temporal_');
    } finally {
      await stopStack(config);
    }
  }, 120_000);
});
