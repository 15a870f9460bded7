// `rover logs` picks runs, incarnations, times and sources out of a node's log file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { logHeader } from '../cluster/local/localBackend.ts';
import { parseLogSelection } from './logs.ts';
import { selectNodeLog } from './logRuns.ts';

const MIN = 60_000;
const RUN_1 = Date.parse('2026-05-01T10:00:00Z');
const RUN_2 = Date.parse('2026-05-01T12:00:00Z');
const header = (run: number, incarnation: number, launchedAt: number) => logHeader({ run, nodeId: 0, incarnation, launchedAt }).trimEnd();
const agent = (time: number, msg: string) => JSON.stringify({ level: 30, time, pid: 1, name: 'agent', msg });

/** Two runs of node 0: run 1 with incarnations 0 and 1, run 2 with incarnation 0. */
const LOG = [
  header(RUN_1, 0, RUN_1),
  agent(RUN_1 + 1000, 'registered'),
  'run1 inc0 step 1',
  header(RUN_1, 1, RUN_1 + 10 * MIN),
  'run1 inc1 step 1',
  header(RUN_2, 0, RUN_2),
  agent(RUN_2 + 1000, 'registered'),
  'run2 step 1',
  agent(RUN_2 + 30 * MIN, 'started trainers'),
  'run2 step 2',
  'run2 step 3',
].join('\n');

let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));
function logFile(): string {
  dir = mkdtempSync(path.join(os.tmpdir(), 'rover-logruns-'));
  const file = path.join(dir, 'node-0.log');
  writeFileSync(file, `${LOG}\n`);
  return file;
}

describe('selectNodeLog', () => {
  it('prints the current run only, under its header, without the agent lines', async () => {
    expect(await selectNodeLog(logFile(), { run: 'current', source: 'trainer' })).toEqual([header(RUN_2, 0, RUN_2), 'run2 step 1', 'run2 step 2', 'run2 step 3']);
  });

  it('prints every run and incarnation apart with --run all', async () => {
    expect(await selectNodeLog(logFile(), { run: 'all', source: 'trainer' })).toEqual([
      header(RUN_1, 0, RUN_1), 'run1 inc0 step 1',
      header(RUN_1, 1, RUN_1 + 10 * MIN), 'run1 inc1 step 1',
      header(RUN_2, 0, RUN_2), 'run2 step 1', 'run2 step 2', 'run2 step 3',
    ]);
  });

  it('takes the current run from the store when it knows it', async () => {
    expect(await selectNodeLog(logFile(), { run: 'current', currentRun: RUN_1, source: 'trainer' })).toEqual([
      header(RUN_1, 0, RUN_1), 'run1 inc0 step 1', header(RUN_1, 1, RUN_1 + 10 * MIN), 'run1 inc1 step 1',
    ]);
  });

  it('keeps the last N lines across incarnations with --tail', async () => {
    expect(await selectNodeLog(logFile(), { run: 'all', tail: 2, source: 'trainer' })).toEqual([header(RUN_2, 0, RUN_2), 'run2 step 2', 'run2 step 3']);
  });

  it('dates a trainer line by the nearest header or agent line above it with --since', async () => {
    expect(await selectNodeLog(logFile(), { run: 'current', since: RUN_2 + 20 * MIN, source: 'trainer' })).toEqual([header(RUN_2, 0, RUN_2), 'run2 step 2', 'run2 step 3']);
  });

  it("prints the agent's JSON lines apart with --agent", async () => {
    expect(await selectNodeLog(logFile(), { run: 'current', source: 'agent' })).toEqual([header(RUN_2, 0, RUN_2), agent(RUN_2 + 1000, 'registered'), agent(RUN_2 + 30 * MIN, 'started trainers')]);
  });

  it('keeps lines written before headers existed when asked for every run', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'rover-logruns-'));
    const file = path.join(dir, 'node-0.log');
    writeFileSync(file, 'old line\n');
    expect(await selectNodeLog(file, { run: 'all', source: 'trainer' })).toEqual(['old line']);
  });
});

describe('parseLogSelection', () => {
  it('reads --since as a duration ago or a time, and --tail as a line count', () => {
    const now = RUN_2;
    expect(parseLogSelection({ run: 'current', since: '10m', tail: '50' }, now)).toEqual({ run: 'current', since: now - 10 * MIN, tail: 50, source: 'trainer' });
    expect(parseLogSelection({ run: 'all', since: '2026-05-01T10:00:00Z', agent: true }, now)).toMatchObject({ since: RUN_1, source: 'agent' });
  });

  it('names the option and the fix for bad input', () => {
    expect(() => parseLogSelection({ run: 'latest' })).toThrow('--run must be current or all (got "latest")');
    expect(() => parseLogSelection({ run: 'current', tail: '-3' })).toThrow('--tail must be a number of lines like 100');
    expect(() => parseLogSelection({ run: 'current', since: 'yesterday' })).toThrow('--since takes a duration ago like 10m');
  });
});
