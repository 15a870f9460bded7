// `rover logs`: prints the per-node log files the local backend writes to
// <home>/logs/<job>/node-<N>.log (every run and incarnation of a node appends to the same file,
// each opened by a header line; cli/logRuns.ts selects from them), and with --follow keeps
// printing what is appended after the selection, like `tail -f` over all nodes. Jobs on the ray
// and kubernetes backends are read from there instead (cli/rayLogs.ts, cli/kubeLogs.ts).
import { untilInterrupted } from './output.ts';
import { existsSync } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { loadConfig } from '../common/config.ts';
import { parseDuration } from '../common/spec/units.ts';
import { parseLogHeader } from '../cluster/local/localBackend.ts';
import { lineOfSource, selectNodeLog, type LogSelection } from './logRuns.ts';
import { kubeLogsCommand } from './kubeLogs.ts';
import { rayLogsCommand } from './rayLogs.ts';
import { withStore } from './shardProgress.ts';

const NODE_LOG = /^node-(\d+)\.log$/;
const CHUNK_BYTES = 1 << 20;

export function nodeLogFile(dir: string, node: number): string {
  return path.join(dir, `node-${node}.log`);
}

/**
 * The job's log folder. `job` may also be the workflow id (`job-<name>`): a job literally
 * named `job-x` wins over the job `x`.
 */
export function jobLogDir(home: string, job: string): string {
  const dir = path.join(home, 'logs', job);
  if (!existsSync(dir) && job.startsWith('job-')) {
    const byWorkflowId = path.join(home, 'logs', job.slice('job-'.length));
    if (existsSync(byWorkflowId)) return byWorkflowId;
  }
  return dir;
}

/** Node numbers that have a log file in `dir`, ascending. */
export async function listNodeLogs(dir: string): Promise<number[]> {
  const names = await readdir(dir);
  return names
    .map((n) => NODE_LOG.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** A line with its node's tag in front; a run header (it names its node already) stays as it is. */
function tagged(tag: string, line: string): string {
  return parseLogHeader(line) ? line : tag + line;
}

interface TailedFile {
  offset: number;
  decoder: StringDecoder;
  /** Text after the last newline, held back so prefixes land on whole lines. */
  partial: string;
}

export interface LogTailOptions {
  dir: string;
  /** Only this node's file; otherwise every node-<N>.log in `dir`, including ones that appear later. */
  node?: number;
  /** Prefix each line with `[node N] `. */
  prefix: boolean;
  write: (text: string) => void;
  /** Byte offset to start each node's file at (what was already printed); 0 for others. */
  from?: ReadonlyMap<number, number>;
  /** Only the lines it accepts are printed (default: every line). */
  keep?: (line: string) => boolean;
}

/** Reads new bytes from a job's node logs on each `poll()`, remembering where it stopped. */
export class LogTail {
  private readonly files = new Map<number, TailedFile>();

  constructor(private readonly options: LogTailOptions) {}

  /** Prints whatever was appended since the last poll; whole lines only (see `flush`). */
  async poll(): Promise<void> {
    const { dir, node } = this.options;
    const nodes = node === undefined ? await listNodeLogs(dir).catch(() => []) : [node];
    for (const n of nodes) await this.readNew(n);
  }

  /** Prints held-back partial lines, e.g. when the output ends. */
  flush(): void {
    for (const [node, file] of [...this.files].sort(([a], [b]) => a - b)) {
      const rest = file.partial + file.decoder.end();
      file.partial = '';
      if (rest) this.emit(node, `${rest}\n`);
    }
  }

  private async readNew(node: number): Promise<void> {
    const name = nodeLogFile(this.options.dir, node);
    let size: number;
    try {
      size = (await stat(name)).size;
    } catch {
      return; // not written yet
    }
    let file = this.files.get(node);
    if (!file) {
      file = { offset: this.options.from?.get(node) ?? 0, decoder: new StringDecoder('utf8'), partial: '' };
      this.files.set(node, file);
    }
    if (size < file.offset) file.offset = 0; // truncated or replaced: start over
    if (size === file.offset) return;
    const handle = await open(name, 'r');
    try {
      // Bounded chunks: a log may be gigabytes by the time someone looks at it.
      const buffer = Buffer.alloc(Math.min(size - file.offset, CHUNK_BYTES));
      while (file.offset < size) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - file.offset), file.offset);
        if (bytesRead === 0) break;
        file.offset += bytesRead;
        const text = file.partial + file.decoder.write(buffer.subarray(0, bytesRead));
        const end = text.lastIndexOf('\n') + 1;
        file.partial = text.slice(end);
        if (end > 0) this.emit(node, text.slice(0, end));
      }
    } finally {
      await handle.close();
    }
  }

  private emit(node: number, lines: string): void {
    const { keep, prefix } = this.options;
    if (!prefix && !keep) {
      this.options.write(lines);
      return;
    }
    const tag = prefix ? `[node ${node}] ` : '';
    const body = lines.endsWith('\n') ? lines.slice(0, -1) : lines;
    const kept = body.split('\n').filter((line) => !keep || keep(line));
    if (kept.length > 0) this.options.write(`${kept.map((line) => tagged(tag, line)).join('\n')}\n`);
  }
}

/** Prints the logs, then what is appended every `pollMs`, until `signal` aborts. */
export async function followLogs(options: LogTailOptions & { pollMs: number; signal: AbortSignal }): Promise<void> {
  const tail = new LogTail(options);
  while (!options.signal.aborted) {
    await tail.poll();
    await sleep(options.pollMs, undefined, { signal: options.signal }).catch(() => undefined);
  }
  await tail.poll(); // what was written before the stop still belongs to the output
  tail.flush();
}

interface LogsOptions {
  node?: string;
  follow?: boolean;
  tail?: string;
  since?: string;
  run: string;
  agent?: boolean;
}

/** Bad input: the message on stderr, exit code 2. */
class LogsUsageError extends Error {}

/** The selection the options ask for; throws LogsUsageError naming the option at fault. */
export function parseLogSelection(options: Omit<LogsOptions, 'node' | 'follow'>, now = Date.now()): LogSelection {
  if (options.run !== 'current' && options.run !== 'all') throw new LogsUsageError(`--run must be current or all (got "${options.run}")`);
  let tail: number | undefined;
  if (options.tail !== undefined) {
    if (!/^\d+$/.test(options.tail)) throw new LogsUsageError(`--tail must be a number of lines like 100 (got "${options.tail}")`);
    tail = Number(options.tail);
  }
  let since: number | undefined;
  if (options.since !== undefined) {
    const ago = parseDuration(options.since);
    const at = Date.parse(options.since);
    if (ago.ok) since = now - ago.value;
    else if (/^\d{4}-\d{2}-\d{2}/.test(options.since) && !Number.isNaN(at)) since = at;
    else throw new LogsUsageError(`--since takes a duration ago like 10m or 1h30m, or a time like 2026-05-01T12:00:00Z (got "${options.since}")`);
  }
  return { run: options.run, tail, since, source: options.agent ? 'agent' : 'trainer' };
}

export function registerLogsCommand(program: Command): void {
  program
    .command('logs')
    .argument('<job>', 'job name (metadata.name) or workflow id job-<name>')
    .option('--node <n>', 'only this node (its number, as in `rover status`)')
    .option('--run <which>', 'current: the job\'s latest run only; all: every run under this name', 'current')
    .option('--tail <n>', 'only the last N lines of each node')
    .option('--since <when>', 'only lines since a duration ago (10m, 1h30m) or a time (2026-05-01T12:00:00Z)')
    .option('--agent', "the agent's JSON lines (registration, rendezvous, restarts) instead of the trainers' output")
    .option('-f, --follow', 'then keep printing appended lines (of the same kind: trainer output, or with --agent the agent\'s) until Ctrl-C')
    .addHelpText('after', '\nEach incarnation starts with a header line: === rover run <run created> · node N · incarnation I · launched <time> ===\n(kubernetes jobs: each incarnation is a pod, read through the Kubernetes API; its header ends with · pod <name>)')
    .action(async (job: string, options: LogsOptions) => {
      let node: number | undefined;
      let selection: LogSelection;
      try {
        if (options.node !== undefined && !/^\d+$/.test(options.node)) throw new LogsUsageError(`--node must be a node number like 0 or 3 (got "${options.node}")`);
        node = options.node === undefined ? undefined : Number(options.node);
        selection = parseLogSelection(options);
      } catch (err) {
        if (!(err instanceof LogsUsageError)) throw err;
        process.stderr.write(`rover logs: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      const config = loadConfig();
      // Ray-backend jobs: the nodes' output is in their Ray jobs (cli/rayLogs.ts).
      if (await rayLogsCommand(config, job, node, options.follow ?? false)) return;
      // Kubernetes-backend jobs: each incarnation's output is its pod's log (cli/kubeLogs.ts).
      if (await kubeLogsCommand(config, job, node, selection, options.follow ?? false)) return;
      const dir = jobLogDir(config.home, job);
      if (!existsSync(dir)) {
        throw new Error(`no logs for job "${job}": ${dir} does not exist (node logs are written there by the local backend; check the job name with \`rover list\`)`);
      }
      const write = (text: string) => void process.stdout.write(text);
      if (!options.follow && node !== undefined && !existsSync(nodeLogFile(dir, node))) {
        const nodes = await listNodeLogs(dir);
        throw new Error(`no log for node ${node}: ${nodeLogFile(dir, node)} does not exist (nodes with logs: ${nodes.join(', ') || 'none'})`);
      }
      // What the files hold now is selected (--run, --since, --tail, --agent); --follow then prints
      // what is appended after it, of the same kind.
      const nodes = node === undefined ? await listNodeLogs(dir) : [node];
      const printed = new Map<number, number>();
      for (const n of nodes) printed.set(n, (await stat(nodeLogFile(dir, n)).catch(() => undefined))?.size ?? 0);
      // The store knows when the job's current run was created; without it, the newest run in each file.
      const jobId = path.basename(dir);
      const currentRun = selection.run === 'current' ? await withStore(config, async (store) => (await store.jobs.get(jobId))?.createdAt) : undefined;
      for (const n of nodes) {
        const lines = await selectNodeLog(nodeLogFile(dir, n), { ...selection, currentRun, endByte: printed.get(n) });
        const tag = node === undefined ? `[node ${n}] ` : '';
        if (lines.length > 0) write(`${lines.map((l) => tagged(tag, l)).join('\n')}\n`);
      }
      if (!options.follow) return;
      const tailOptions = { dir, node, prefix: node === undefined, write, from: printed, keep: (line: string) => lineOfSource(line, selection.source) };
      await untilInterrupted((signal) => followLogs({ ...tailOptions, pollMs: 250, signal }));
    });
}
