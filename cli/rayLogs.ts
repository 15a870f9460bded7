// `rover logs` for jobs on the ray backend. A node's output lives in its Ray jobs (one per
// incarnation), read through the Jobs API; when Rover stops a Ray job it first appends the
// job's log to <home>/logs/<job>/node-<N>.log and then deletes it from Ray. So a node's log is
// that file (incarnations Rover tore down) followed by what Ray still holds.
import { untilInterrupted } from './output.ts';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RoverConfig } from '../common/config.ts';
import { nodeLogPath } from '../cluster/local/localBackend.ts';
import { RayJobsClient, runTag, submissionId } from '../cluster/ray/index.ts';
import { resolveRayToken } from '../cluster/ray/rayBackend.ts';
import { openStore, type Store } from '../store/index.ts';

export interface RayLogsOptions {
  config: RoverConfig;
  /** Job name or workflow id job-<name>. */
  job: string;
  node?: number;
  follow: boolean;
  signal?: AbortSignal;
  write: (text: string) => void;
}

/** Prints the logs when `job` runs on the ray backend; false when it is not a Ray job (or unknown). */
export async function printRayJobLogs(options: RayLogsOptions): Promise<boolean> {
  const { config } = options;
  const sqliteFile = config.storeUrl.startsWith('sqlite:') ? config.storeUrl.slice('sqlite:'.length) : undefined;
  if (sqliteFile !== undefined && !existsSync(sqliteFile)) return false;
  const store = await openStore(config.storeUrl);
  try {
    let job = await store.jobs.get(options.job);
    if (!job && options.job.startsWith('job-')) job = await store.jobs.get(options.job.slice('job-'.length));
    if (!job || job.backend !== 'ray') return false;
    const spec = job.spec;
    const client = new RayJobsClient({
      address: spec.spec.ray?.address ?? 'http://127.0.0.1:8265',
      token: resolveRayToken(config),
      timeoutMs: config.ray.requestTimeoutMs,
    });
    const tail = new RayLogTail(store, client, config.home, job.id, runTag(job.createdAt), options);
    await tail.poll();
    while (options.follow && !options.signal?.aborted) {
      await sleep(1000, undefined, { signal: options.signal }).catch(() => undefined);
      await tail.poll();
    }
    return true;
  } finally {
    await store.close();
  }
}

class RayLogTail {
  /** Characters of each Ray job's log printed so far. */
  private readonly printed = new Map<string, number>();
  /** Nodes whose archived file was printed (once: later archives repeat what Ray showed). */
  private readonly archivesShown = new Set<number>();

  constructor(
    private readonly store: Store,
    private readonly client: RayJobsClient,
    private readonly home: string,
    private readonly jobId: string,
    private readonly run: string,
    private readonly options: RayLogsOptions,
  ) {}

  async poll(): Promise<void> {
    const nodes = (await this.store.nodes.listByJob(this.jobId))
      .filter((n) => this.options.node === undefined || n.nodeId === this.options.node)
      .sort((a, b) => a.nodeId - b.nodeId || a.incarnation - b.incarnation);
    if (this.options.node !== undefined && nodes.length === 0 && this.printed.size === 0) {
      throw new Error(`job ${this.jobId} has no node ${this.options.node}`);
    }
    for (const node of nodes) {
      if (!this.archivesShown.has(node.nodeId)) {
        this.archivesShown.add(node.nodeId);
        const file = nodeLogPath(this.home, this.jobId, node.nodeId);
        if (existsSync(file)) this.emit(node.nodeId, readFileSync(file, 'utf8'));
      }
      if (node.logPath === null) continue; // never submitted
      const id = submissionId(this.jobId, this.run, node.nodeId, node.incarnation);
      const logs = await this.client.logs(id);
      if (logs === undefined) continue; // archived above, or gone
      const from = this.printed.get(id) ?? 0;
      // While following, hold back a partial last line until its newline arrives.
      const upTo = this.options.follow ? logs.lastIndexOf('\n') + 1 : logs.length;
      if (upTo > from) this.emit(node.nodeId, logs.slice(from, upTo));
      this.printed.set(id, Math.max(from, upTo));
    }
  }

  private emit(node: number, text: string): void {
    if (!text) return;
    const body = text.endsWith('\n') ? text.slice(0, -1) : text;
    const prefix = this.options.node === undefined ? `[node ${node}] ` : '';
    this.options.write(`${body.split('\n').map((line) => prefix + line).join('\n')}\n`);
  }
}

/** `rover logs` for a Ray job, with Ctrl-C ending --follow; false when `job` is not on the ray backend. */
export async function rayLogsCommand(config: RoverConfig, job: string, node: number | undefined, follow: boolean): Promise<boolean> {
  const write = (text: string) => void process.stdout.write(text);
  return untilInterrupted((signal) => printRayJobLogs({ config, job, node, follow, signal, write }));
}
