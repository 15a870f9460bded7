// `rover logs` without --follow on the local backend: a node's log file holds every run and
// incarnation of the node, each opened by a header line (cluster/local/localBackend.ts
// logHeader). This reads one file line by line, keeps the run asked for, the lines since a time,
// the trainers' output or the agent's JSON lines, and the last N of them, and prints each kept
// incarnation under its header. Memory stays bounded by what is kept, not the file's size.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseLogHeader } from '../cluster/local/localBackend.ts';

export interface LogSelection {
  /** 'current': only the newest run (or `currentRun` when known); 'all': every run. */
  run: 'current' | 'all';
  /** The current run's creation time (ms), from the store; else the newest run in the file. */
  currentRun?: number;
  /** Only lines written at or after this time (ms). A trainer line has no time of its own: it takes that of the nearest header or agent line above it. */
  since?: number;
  /** Only the last this many lines (of what the other filters keep). */
  tail?: number;
  /** 'trainer': the training processes' output; 'agent': the agent's structured (JSON) lines. */
  source: 'trainer' | 'agent';
  /** Only the file's first this many bytes (what it held when `rover logs --follow` started). */
  endByte?: number;
}

interface Segment {
  header: string | undefined;
  run: number | undefined;
  lines: string[];
}

/** The `time` (ms) of one of the agent's pino JSON lines; undefined for any other line. */
export function agentLineTime(line: string): number | undefined {
  if (!line.startsWith('{"level":')) return undefined;
  try {
    const parsed = JSON.parse(line) as { time?: unknown; name?: unknown };
    return parsed.name === 'agent' && typeof parsed.time === 'number' ? parsed.time : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a line belongs in the output of `source`: a run header always does. */
export function lineOfSource(line: string, source: LogSelection['source']): boolean {
  return parseLogHeader(line) !== undefined || (agentLineTime(line) !== undefined) === (source === 'agent');
}

/** The selected lines of one node's log file, each kept incarnation opened by its header line. */
export async function selectNodeLog(file: string, selection: LogSelection): Promise<string[]> {
  const segments: Segment[] = [];
  let current: Segment | undefined;
  let lineTime = 0;
  let kept = 0;
  if (selection.endByte === 0) return [];
  const input = createReadStream(file, { encoding: 'utf8', ...(selection.endByte !== undefined && { end: selection.endByte - 1 }) });
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const line of lines) {
    const header = parseLogHeader(line);
    if (header) {
      lineTime = header.launchedAt;
      current = { header: line, run: header.run, lines: [] };
      // Runs only move forward in a file: a newer run makes the older ones not current.
      if (selection.run === 'current' && selection.currentRun === undefined && segments.some((s) => s.run !== header.run)) {
        segments.length = 0;
        kept = 0;
      }
      segments.push(current);
      continue;
    }
    if (!current) {
      current = { header: undefined, run: undefined, lines: [] }; // written before headers existed
      segments.push(current);
    }
    const agentTime = agentLineTime(line);
    if (agentTime !== undefined) lineTime = agentTime;
    if (!lineOfSource(line, selection.source)) continue;
    if (selection.since !== undefined && lineTime < selection.since) continue;
    current.lines.push(line);
    kept++;
    // Bounded: drop the oldest kept lines once well past the tail.
    if (selection.tail !== undefined && kept > 2 * selection.tail + 1000) kept = trimToLast(segments, selection.tail);
  }
  const run = selection.run === 'all' ? undefined : (selection.currentRun ?? [...segments].reverse().find((s) => s.run !== undefined)?.run);
  const chosen = selection.run === 'all' ? segments : segments.filter((s) => s.run !== undefined && s.run === run);
  if (selection.tail !== undefined) trimToLast(chosen, selection.tail);
  return chosen.filter((s) => s.lines.length > 0).flatMap((s) => [...(s.header ? [s.header] : []), ...s.lines]);
}

/** Keeps only the last `n` lines across the segments (in place); returns how many are left. */
function trimToLast(segments: Segment[], n: number): number {
  let left = n;
  for (let i = segments.length - 1; i >= 0; i--) {
    const s = segments[i]!;
    if (s.lines.length > left) s.lines.splice(0, s.lines.length - left);
    left -= s.lines.length;
  }
  return n - left;
}
