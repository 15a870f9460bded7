// CPU and memory of training processes, read from /proc (Linux). Elsewhere, or for a process
// that has already exited, a pid simply yields no sample.
import { readFile } from 'node:fs/promises';

export interface Usage {
  cpuPercent: number;
  rssBytes: number;
}

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat. 100 on every mainstream Linux ABI. */
const CLOCK_TICKS_PER_SECOND = 100;

interface CpuReading {
  /** utime + stime, in clock ticks. */
  ticks: number;
  /** Seconds since boot when read (same clock as a process's start time). */
  uptime: number;
}

export class UsageSampler {
  private previous = new Map<number, CpuReading>();

  /**
   * Usage per pid. CPU% covers the time since this pid's previous sample (100 = one full core);
   * for the first sample of a pid, its whole lifetime.
   */
  async sample(pids: number[]): Promise<Map<number, Usage>> {
    const current = new Map<number, CpuReading>();
    const result = new Map<number, Usage>();
    const uptime = await readUptime();
    if (uptime === null) return result;
    await Promise.all(
      pids.map(async (pid) => {
        const [stat, status] = await Promise.all([readText(`/proc/${pid}/stat`), readText(`/proc/${pid}/status`)]);
        const cpu = stat === null ? null : parseStat(stat);
        const rssBytes = status === null ? null : parseRssBytes(status);
        if (cpu === null || rssBytes === null) return;
        const reading = { ticks: cpu.ticks, uptime };
        current.set(pid, reading);
        const before = this.previous.get(pid) ?? { ticks: 0, uptime: cpu.startTicks / CLOCK_TICKS_PER_SECOND };
        result.set(pid, { cpuPercent: cpuPercent(before, reading), rssBytes });
      }),
    );
    // Forget pids that were not asked for or have exited, so a reused pid starts fresh.
    this.previous = current;
    return result;
  }
}

export function cpuPercent(before: CpuReading, after: CpuReading): number {
  const elapsed = after.uptime - before.uptime;
  if (elapsed <= 0) return 0;
  const busy = (after.ticks - before.ticks) / CLOCK_TICKS_PER_SECOND;
  return Math.max(0, Math.round((busy / elapsed) * 1000) / 10);
}

/** utime+stime and start time (ticks after boot) from /proc/<pid>/stat, or null if unreadable. */
export function parseStat(stat: string): { ticks: number; startTicks: number } | null {
  // The command name (field 2) is in parentheses and may contain spaces or ')': split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime, stime and starttime are fields 14, 15 and 22.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const startTicks = Number(fields[19]);
  if (![utime, stime, startTicks].every(Number.isFinite)) return null;
  return { ticks: utime + stime, startTicks };
}

/** VmRSS from /proc/<pid>/status in bytes, or null (a zombie has none). */
export function parseRssBytes(status: string): number | null {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) * 1024 : null;
}

async function readUptime(): Promise<number | null> {
  const text = await readText('/proc/uptime');
  const seconds = text === null ? NaN : Number(text.split(' ')[0]);
  return Number.isFinite(seconds) ? seconds : null;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}
