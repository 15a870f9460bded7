import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parseProcStat, processGroupMembers } from '../common/procfs.ts';
import { waitUntil } from '../test/waits.ts';
import { cpuPercent, parseRssBytes, parseStat, UsageSampler } from './usage.ts';

const MIB = 1024 * 1024;
const started: ChildProcess[] = [];
afterEach(async () => {
  // Each child leads its own group (detached, as the agent starts trainers): kill the group.
  for (const child of started.splice(0)) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Starts a process the way the agent starts a trainer: leader of its own process group. */
function startGroup(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(child);
  return child;
}

function ownRssBytes(pid: number): number {
  return parseRssBytes(readFileSync(`/proc/${pid}/status`, 'utf8'))!;
}

describe('UsageSampler', () => {
  it('reports the resident memory and CPU of a live process', async () => {
    // Busy for 200 ms of CPU time first, so its lifetime CPU share is clearly above zero.
    const script = 'const end = Date.now() + 200; while (Date.now() < end); console.log("ready"); setInterval(() => {}, 1000)';
    const child = startGroup(process.execPath, ['-e', script]);
    await once(child.stdout!, 'data');
    const pid = child.pid!;
    const usage = (await new UsageSampler().sample([pid])).get(pid);
    expect(usage?.rssBytes).toBeGreaterThan(MIB);
    expect(usage?.cpuPercent).toBeGreaterThan(0);
  });

  it('sums memory and CPU over the whole process group: a trainer behind `sh -c` counts', async () => {
    // The wrapper stays (a command follows python), so the group's leader is sh; python holds
    // 200 MiB of touched memory, then keeps one core busy.
    const python = 'b = b"x" * (200 << 20); print("ready", flush=True)\nwhile True: pass';
    const wrapper = startGroup('sh', ['-c', `python3 -c '${python}'; exit $?`]);
    await once(wrapper.stdout!, 'data');
    const leader = wrapper.pid!;
    const members = processGroupMembers(leader);
    expect(members?.map((p) => p.comm).sort()).toEqual(['python3', 'sh']);
    // The leader itself is a small shell: the figure below is the python behind it.
    expect(ownRssBytes(leader)).toBeLessThan(50 * MIB);

    const sampler = new UsageSampler();
    const usage = (await sampler.sample([leader])).get(leader);
    expect(usage?.rssBytes).toBeGreaterThan(200 * MIB);
    // The shell waits on python and uses no CPU: a share above zero between two samples is python's.
    await waitUntil(async () => ((await sampler.sample([leader])).get(leader)?.cpuPercent ?? 0) > 0, 'CPU of the busy python', 10_000);
  });

  it('leaves out a process group that has exited', async () => {
    const child = startGroup(process.execPath, ['-e', '']);
    await once(child, 'exit');
    const samples = await new UsageSampler().sample([child.pid!]);
    expect(samples.size).toBe(0);
  });
});

describe('/proc parsing', () => {
  it('reads pid, ppid, state, process group, session and a command name with spaces and parentheses', () => {
    const stat = '4242 (my (weird) cmd) S 17 4240 4200 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0 98765 1000 200';
    expect(parseProcStat(stat)).toEqual({ pid: 4242, ppid: 17, state: 'S', processGroupId: 4240, sessionId: 4200, comm: 'my (weird) cmd' });
    expect(parseProcStat('4242 (cut')).toBeNull();
  });

  it('reads utime+stime and start time after a command name with spaces and parentheses', () => {
    const stat = '4242 (my (weird) cmd) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 3 0 98765 1000 200';
    expect(parseStat(stat)).toEqual({ ticks: 300, startTicks: 98765 });
  });

  it('reads VmRSS in bytes and nothing for a zombie', () => {
    expect(parseRssBytes('Name:\tpython\nVmRSS:\t   2048 kB\nThreads:\t1\n')).toBe(2048 * 1024);
    expect(parseRssBytes('Name:\tpython\nState:\tZ (zombie)\n')).toBeNull();
  });

  it('computes CPU percent from tick and uptime deltas (100 = one core)', () => {
    expect(cpuPercent({ ticks: 100, uptime: 10 }, { ticks: 250, uptime: 11 })).toBe(150);
    expect(cpuPercent({ ticks: 100, uptime: 10 }, { ticks: 100, uptime: 10 })).toBe(0);
  });
});
