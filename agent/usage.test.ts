import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { cpuPercent, parseRssBytes, parseStat, UsageSampler } from './usage.ts';

describe('UsageSampler', () => {
  it('reports the resident memory and CPU of a live process', async () => {
    // Busy for 200 ms of CPU time first, so its lifetime CPU share is clearly above zero.
    const script = 'const end = Date.now() + 200; while (Date.now() < end); console.log("ready"); setInterval(() => {}, 1000)';
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await once(child.stdout!, 'data');
      const pid = child.pid!;
      const usage = (await new UsageSampler().sample([pid])).get(pid);
      expect(usage?.rssBytes).toBeGreaterThan(1024 * 1024);
      expect(usage?.cpuPercent).toBeGreaterThan(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('leaves out a process that has exited', async () => {
    const child = spawn(process.execPath, ['-e', '']);
    await once(child, 'exit');
    const samples = await new UsageSampler().sample([child.pid!]);
    expect(samples.size).toBe(0);
  });
});

describe('/proc parsing', () => {
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
