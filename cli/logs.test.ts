import { appendFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { logHeader } from '../cluster/local/localBackend.ts';
import { lineOfSource, selectNodeLog } from './logRuns.ts';
import { followLogs, jobLogDir, LogTail, nodeLogFile } from './logs.ts';

let home: string;
let dir: string;
let output: string;
const write = (text: string) => {
  output += text;
};

beforeEach(() => {
  home = mkdtempSync(path.join(os.tmpdir(), 'rover-logs-'));
  dir = path.join(home, 'logs', 'demo');
  mkdirSync(dir, { recursive: true });
  output = '';
});

afterEach(() => {
  rmSync(home, { recursive: true, force: true });
});

describe('LogTail', () => {
  it('prints only appended bytes on each poll and holds a partial line until its newline', async () => {
    const file = nodeLogFile(dir, 0);
    writeFileSync(file, 'a\n');
    const tail = new LogTail({ dir, prefix: true, write });
    await tail.poll();
    expect(output).toBe('[node 0] a\n');
    appendFileSync(file, 'b\nhalf');
    await tail.poll();
    expect(output).toBe('[node 0] a\n[node 0] b\n');
    appendFileSync(file, ' line\n');
    await tail.poll();
    expect(output).toBe('[node 0] a\n[node 0] b\n[node 0] half line\n');
  });

  it('keeps a multi-byte character split across two writes intact', async () => {
    const file = nodeLogFile(dir, 0);
    const bytes = Buffer.from('loss 0.5 ✓\n');
    const cut = bytes.indexOf(Buffer.from('✓')) + 1; // inside the 3-byte character
    writeFileSync(file, bytes.subarray(0, cut));
    const tail = new LogTail({ dir, node: 0, prefix: false, write });
    await tail.poll();
    appendFileSync(file, bytes.subarray(cut));
    await tail.poll();
    expect(output).toBe('loss 0.5 ✓\n');
  });

  it('after a selection, follows from where it ended and prints only lines of the same kind', async () => {
    const file = nodeLogFile(dir, 0);
    const agentLine = (time: number) => `{"level":30,"time":${time},"name":"agent","msg":"heartbeat"}\n`;
    writeFileSync(file, `${logHeader({ run: 1000, nodeId: 0, incarnation: 0, launchedAt: 1000 })}step 1\n${agentLine(2000)}step 2\n`);
    // `rover logs --tail 1 --follow`: the selection, up to the bytes there were at the start...
    const printed = new Map([[0, statSync(file).size]]);
    appendFileSync(file, 'step 3\n'); // written between the size and the read: printed once, by the tail
    const selected = await selectNodeLog(file, { run: 'current', source: 'trainer', tail: 1, endByte: printed.get(0) });
    expect(selected.slice(1)).toEqual(['step 2']);
    // ...then what is appended, trainer lines only, run headers included.
    const tail = new LogTail({ dir, prefix: true, write, from: printed, keep: (line) => lineOfSource(line, 'trainer') });
    appendFileSync(file, `${agentLine(3000)}${logHeader({ run: 1000, nodeId: 0, incarnation: 1, launchedAt: 4000 })}step 4\n`);
    await tail.poll();
    expect(output).toBe(`[node 0] step 3\n${logHeader({ run: 1000, nodeId: 0, incarnation: 1, launchedAt: 4000 })}[node 0] step 4\n`);
  });

  it('starts over when a file is truncated', async () => {
    const file = nodeLogFile(dir, 0);
    writeFileSync(file, 'first run, long line\n');
    const tail = new LogTail({ dir, node: 0, prefix: false, write });
    await tail.poll();
    writeFileSync(file, 'new\n');
    await tail.poll();
    expect(output).toBe('first run, long line\nnew\n');
  });
});

describe('followLogs', () => {
  it('picks up appended lines and node files that appear later, until aborted', async () => {
    writeFileSync(nodeLogFile(dir, 0), 'started\n');
    const stop = new AbortController();
    const following = followLogs({ dir, prefix: true, write, pollMs: 20, signal: stop.signal });

    await vi.waitFor(() => expect(output).toBe('[node 0] started\n'), { timeout: 5000, interval: 10 });
    appendFileSync(nodeLogFile(dir, 0), 'step 1\n');
    await vi.waitFor(() => expect(output).toContain('[node 0] step 1\n'), { timeout: 5000, interval: 10 });
    writeFileSync(nodeLogFile(dir, 1), 'joined\n');
    await vi.waitFor(() => expect(output).toContain('[node 1] joined\n'), { timeout: 5000, interval: 10 });
    appendFileSync(nodeLogFile(dir, 1), 'no newline yet');

    stop.abort();
    await following;
    expect(output).toBe('[node 0] started\n[node 0] step 1\n[node 1] joined\n[node 1] no newline yet\n');
  });

  it('waits for a node file that does not exist yet', async () => {
    const stop = new AbortController();
    const following = followLogs({ dir, node: 4, prefix: false, write, pollMs: 20, signal: stop.signal });
    writeFileSync(nodeLogFile(dir, 4), 'late\n');
    await vi.waitFor(() => expect(output).toBe('late\n'), { timeout: 5000, interval: 10 });
    stop.abort();
    await following;
  });
});

describe('jobLogDir', () => {
  it('accepts the job name or its workflow id', () => {
    expect(jobLogDir(home, 'demo')).toBe(dir);
    expect(jobLogDir(home, 'job-demo')).toBe(dir);
  });

  it('prefers a job literally named job-x over the job x', () => {
    mkdirSync(path.join(home, 'logs', 'job-demo'));
    expect(jobLogDir(home, 'job-demo')).toBe(path.join(home, 'logs', 'job-demo'));
  });
});
