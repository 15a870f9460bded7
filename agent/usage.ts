// CPU and memory of training processes, read from /proc (Linux), per trainer: summed over every
// process of the trainer's process group, so a wrapper (`sh -c "python3 train.py"`) in front of
// the trainer does not hide it, and data-loader workers count with their trainer. Elsewhere, or
// for a group whose processes have all exited, a group simply yields no sample.
import { readFile } from 'node:fs/promises';
import { listProcesses } from '../common/procfs.ts';

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

/** A group at its previous sample: when, and each member's CPU ticks then. */
interface GroupReading {
  uptime: number;
  /** Keyed by pid and start time, so a reused pid starts from zero. */
  ticks: Map<string, number>;
}

export class UsageSampler {
  private previous = new Map<number, GroupReading>();

  /**
   * Usage per process group, keyed by group id (the leader's pid, as ProcessGroup.livePids gives
   * them): RSS and CPU summed over the group's running processes. CPU% covers the time since the
   * group's previous sample (100 = one full core); a process that started since then counts all
   * its ticks. For a group's first sample, the time since its oldest process started. CPU of
   * members that exited between two samples is not seen.
   */
  async sample(groupIds: number[]): Promise<Map<number, Usage>> {
    const result = new Map<number, Usage>();
    const uptime = await readUptime();
    const processes = listProcesses();
    if (uptime === null || processes === null) return result;
    const wanted = new Set(groupIds);
    const members = processes.filter((p) => wanted.has(p.processGroupId) && p.state !== 'Z');
    const readings = await Promise.all(
      members.map(async (p) => {
        const [stat, status] = await Promise.all([readText(`/proc/${p.pid}/stat`), readText(`/proc/${p.pid}/status`)]);
        const cpu = stat === null ? null : parseStat(stat);
        const rssBytes = status === null ? null : parseRssBytes(status);
        // Exited meanwhile (or a zombie by now): it has neither.
        return cpu === null || rssBytes === null ? [] : [{ group: p.processGroupId, key: `${p.pid}@${cpu.startTicks}`, ...cpu, rssBytes }];
      }),
    );
    const read = readings.flat();
    const current = new Map<number, GroupReading>();
    for (const id of groupIds) {
      const mine = read.filter((r) => r.group === id);
      if (mine.length === 0) continue;
      const ticks = new Map(mine.map((r) => [r.key, r.ticks]));
      current.set(id, { uptime, ticks });
      const now = { ticks: sum(mine.map((r) => r.ticks)), uptime };
      const previous = this.previous.get(id);
      const before = previous
        ? { ticks: sum(mine.map((r) => previous.ticks.get(r.key) ?? 0)), uptime: previous.uptime }
        : { ticks: 0, uptime: Math.min(...mine.map((r) => r.startTicks)) / CLOCK_TICKS_PER_SECOND };
      result.set(id, { cpuPercent: cpuPercent(before, now), rssBytes: sum(mine.map((r) => r.rssBytes)) });
    }
    // Forget groups that were not asked for or have emptied.
    this.previous = current;
    return result;
  }
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
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
