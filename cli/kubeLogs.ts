// `rover logs` for jobs on the kubernetes backend. Each node incarnation is one pod
// (cluster/kubernetes/manifests.ts: rover-<job>-<node>-<incarnation>, labelled with the job, the
// node and the incarnation), and its output is the agent container's log, read through the
// Kubernetes API (pods/log): Kubernetes keeps it as long as the pod exists. Like the local
// backend, each incarnation is printed under a header line; --tail keeps the last N lines of
// each node across its incarnations, --since asks the kubelet for the lines since a time,
// --follow then streams what the pods write (and the pods of later incarnations) until Ctrl-C.
import { untilInterrupted } from './output.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, Log, type KubeConfig } from '@kubernetes/client-node';
import type { RoverConfig } from '../common/config.ts';
import { isTerminalPhase, type JobPhase } from '../common/phases.ts';
import { loadKubeConfig, statusOf } from '../cluster/kubernetes/kubeClient.ts';
import { AGENT_CONTAINER, jobSelector, LABEL_NODE } from '../cluster/kubernetes/manifests.ts';
import type { Job } from '../store/index.ts';
import {
  kubeFailure, markOf, podHeader, podLogProblem, podRefs, sinceTimeOf, splitTimedLog, type LogMark, type PodRef,
} from './kubeLogFormat.ts';
import { PodStream } from './kubeLogStream.ts';
import { lineOfSource, type LogSelection } from './logRuns.ts';
import { withStore } from './shardProgress.ts';

export interface KubeLogsOptions {
  config: RoverConfig;
  /** Job name or workflow id job-<name>. */
  job: string;
  node?: number;
  selection: LogSelection;
  follow: boolean;
  signal?: AbortSignal;
  write: (text: string) => void;
  /** A remark for the user that is not log output (stderr). */
  note: (text: string) => void;
  /** How often --follow looks for new pods. Default 1 s. */
  pollMs?: number;
}

/** The job's row when it runs on the kubernetes backend; undefined for other or unknown jobs. */
async function kubeJob(config: RoverConfig, name: string): Promise<Job | undefined> {
  const job = await withStore(config, async (store) => (await store.jobs.get(name)) ?? (name.startsWith('job-') ? await store.jobs.get(name.slice('job-'.length)) : undefined));
  return job?.backend === 'kubernetes' ? job : undefined;
}

function kubeConfigFor(config: RoverConfig, jobId: string): KubeConfig {
  let kc: KubeConfig | undefined;
  try {
    kc = loadKubeConfig(config.kubernetes);
  } catch (err) {
    throw new Error(`job ${jobId} runs on the kubernetes backend, but its cluster's kubeconfig cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!kc) throw new Error(`job ${jobId} runs on the kubernetes backend, and no cluster is configured here: set ROVER_KUBECONFIG to a kubeconfig file (or ROVER_KUBERNETES_IN_CLUSTER=true inside a pod)`);
  return kc;
}

/** Prints the logs when `job` runs on the kubernetes backend; false when it does not (or is unknown). */
export async function printKubeJobLogs(o: KubeLogsOptions): Promise<boolean> {
  const job = await kubeJob(o.config, o.job);
  if (!job) return false;
  const kc = kubeConfigFor(o.config, job.id);
  const namespace = job.spec.spec.kubernetes?.namespace ?? 'default';
  const logs = new PodLogs(kc, namespace, job, o);
  const pods = await logs.listPods();
  const earlier = pods.filter((p) => !p.current).length;
  const shown = o.selection.run === 'all' ? pods : pods.filter((p) => p.current);
  const which = o.node === undefined ? `job ${job.id}` : `node ${o.node} of job ${job.id}`;
  const gone = 'Kubernetes keeps a pod\'s log only while the pod exists, and Rover deletes a run\'s pods when the run ends';
  if (o.selection.run === 'all') o.note(`rover logs: ${gone}: earlier runs show only where their pods are left (${earlier} pod${earlier === 1 ? '' : 's'} of earlier runs here)\n`);
  else if (earlier > 0) o.note(`rover logs: ${earlier} pod${earlier === 1 ? '' : 's'} of earlier runs of ${job.id} still exist; --run all shows them\n`);
  const waitForPods = o.follow && !isTerminalPhase(job.phase as JobPhase);
  if (shown.length === 0 && !waitForPods) {
    throw new Error(`no pods of ${which} in namespace ${namespace} (label ${jobSelector(job.id)}): ${gone} (the job is ${job.phase})`);
  }
  const marks = await logs.printSelection(shown);
  if (o.follow) await logs.follow(marks, shown);
  return true;
}

/**
 * Where each pod's log stood after the selection was printed: a mark, or undefined when it had
 * no log to give (nothing of it printed). Absent: not read (--tail was met by later incarnations).
 */
type Marks = Map<string, LogMark | undefined>;

class PodLogs {
  private readonly core: CoreV1Api;
  private readonly server: string;
  /** Pods whose header line is out. */
  private readonly headed = new Set<string>();
  private readonly sinceSeconds: number | undefined;
  private readonly sinceInFuture: boolean;

  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string,
    private readonly job: Job,
    private readonly o: KubeLogsOptions,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.server = kc.getCurrentCluster()?.server ?? 'the configured server';
    const since = o.selection.since;
    this.sinceInFuture = since !== undefined && since > Date.now();
    this.sinceSeconds = since === undefined || this.sinceInFuture ? undefined : Math.max(1, Math.ceil((Date.now() - since) / 1000));
  }

  async listPods(): Promise<PodRef[]> {
    const labelSelector = jobSelector(this.job.id) + (this.o.node === undefined ? '' : `,${LABEL_NODE}=${this.o.node}`);
    try {
      const list = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector });
      return podRefs(list.items, this.job.createdAt);
    } catch (err) {
      throw new Error(kubeFailure(err, `list pods in namespace ${this.namespace}`, this.server));
    }
  }

  /** Prints the selected lines of each node, incarnation by incarnation; returns where each read pod's log stood. */
  async printSelection(pods: PodRef[]): Promise<Marks> {
    const marks: Marks = new Map();
    const tail = this.o.selection.tail;
    for (const nodeId of [...new Set(pods.map((p) => p.nodeId))]) {
      const chosen: { pod: PodRef; lines: string[] }[] = [];
      let left = tail;
      // Newest incarnation first: --tail N is the last N lines of the node, across its pods.
      for (const pod of pods.filter((p) => p.nodeId === nodeId).reverse()) {
        if (left === 0 || this.sinceInFuture) break;
        const read = await this.readSelected(pod, left);
        marks.set(pod.name, read?.mark);
        if (!read) continue;
        if (pod.pending && read.mark === undefined) this.o.note(`rover logs: node ${pod.nodeId} incarnation ${pod.incarnation} (pod ${pod.name}) is pending: no log yet\n`);
        chosen.unshift({ pod, lines: read.lines });
        if (left !== undefined) left -= read.lines.length;
      }
      for (const { pod, lines } of chosen) if (lines.length > 0) this.emit(pod, lines);
    }
    return marks;
  }

  /**
   * The last `want` lines of the pod's log that belong to the selection (all when undefined),
   * and where the log stood. Lines of the other source (agent or trainer) are dropped after the
   * read, so a short answer is asked again for more, until enough remain or the log is whole.
   */
  private async readSelected(pod: PodRef, want: number | undefined): Promise<{ lines: string[]; mark: LogMark | undefined } | undefined> {
    for (let ask = want; ; ask = ask! * 4) {
      const body = await this.read(pod, ask);
      if (body === undefined) return undefined;
      const all = splitTimedLog(body);
      const kept = all.filter((l) => lineOfSource(l.text, this.o.selection.source)).map((l) => l.text);
      if (want === undefined || ask === undefined || kept.length >= want || all.length < ask) {
        return { lines: want === undefined ? kept : kept.slice(Math.max(0, kept.length - want)), mark: markOf(all) };
      }
    }
  }

  /** The pod's log with kubelet timestamps; undefined (after a note) when the pod has none to give. */
  private async read(pod: PodRef, tailLines: number | undefined): Promise<string | undefined> {
    try {
      return await this.core.readNamespacedPodLog({
        name: pod.name,
        namespace: this.namespace,
        container: AGENT_CONTAINER,
        timestamps: true,
        ...(tailLines !== undefined && { tailLines }),
        ...(this.sinceSeconds !== undefined && { sinceSeconds: this.sinceSeconds }),
      });
    } catch (err) {
      const code = statusOf(err);
      // A pod not on a node yet has no log: the apiserver answers 200 with an empty, untyped
      // body, which the client cannot parse.
      if (code === undefined && pod.pending && /No Content-Type/i.test(String(err))) return '';
      // 400: the container has not started (pending, pulling its image); 404: deleted meanwhile.
      if (code === 400 || code === 404) {
        this.o.note(`rover logs: no log of node ${pod.nodeId} incarnation ${pod.incarnation} (pod ${pod.name}): ${podLogProblem(err)}\n`);
        return undefined;
      }
      throw new Error(kubeFailure(err, `read the log of pod ${pod.name} in namespace ${this.namespace}`, this.server));
    }
  }

  private emit(pod: PodRef, lines: string[]): void {
    const head = this.headed.has(pod.name) ? '' : `${podHeader(pod, pod.current ? this.job.createdAt : pod.run)}\n`;
    this.headed.add(pod.name);
    const tag = this.o.node === undefined ? `[node ${pod.nodeId}] ` : '';
    this.o.write(`${head}${lines.map((l) => tag + l).join('\n')}\n`);
  }

  /** Streams what the pods write after the selection, and the pods that appear later, until the signal. */
  async follow(marks: Marks, printed: PodRef[]): Promise<void> {
    const streams = new Map<string, PodStream>();
    const shown = (p: PodRef) => this.o.selection.run === 'all' || p.current;
    // Pods whose log had ended when the selection was made: nothing more will come.
    for (const pod of printed) if (pod.ended && (marks.get(pod.name) !== undefined || !marks.has(pod.name))) streams.set(pod.name, PodStream.done());
    while (!this.o.signal?.aborted) {
      const pods = await this.listPods().catch(() => [] as PodRef[]); // apiserver away for a moment: look again
      for (const pod of pods.filter(shown)) {
        const existing = streams.get(pod.name);
        if (existing && !(existing.closed && !pod.ended)) continue;
        // A stream closed while its pod runs (the apiserver restarted) resumes after its last
        // line; a pod that appeared since, or had no log yet, is new from its start.
        const known = printed.some((p) => p.name === pod.name);
        const mark = existing ? existing.mark : !known ? undefined : marks.has(pod.name) ? marks.get(pod.name) : await this.markNow(pod);
        const stream = await this.open(pod, mark);
        if (stream) streams.set(pod.name, stream);
      }
      await sleep(this.o.pollMs ?? 1000, undefined, { signal: this.o.signal }).catch(() => undefined);
    }
    for (const stream of streams.values()) stream.stop();
  }

  /** Where the log of a pod left out of the selection (--tail met by later incarnations) stands. */
  private async markNow(pod: PodRef): Promise<LogMark | undefined> {
    if (this.sinceInFuture) return undefined; // the stream starts at --since
    const body = await this.read(pod, 1);
    return body === undefined ? undefined : markOf(splitTimedLog(body));
  }

  /** Starts a follow=true stream of the pod from just after `mark`; undefined when it cannot start yet. */
  private async open(pod: PodRef, mark: LogMark | undefined): Promise<PodStream | undefined> {
    const since = this.o.selection.since;
    const sinceTime = mark ? sinceTimeOf(mark) : since === undefined ? undefined : new Date(since).toISOString();
    const stream = new PodStream(mark, (text) => lineOfSource(text, this.o.selection.source), (lines) => this.emit(pod, lines));
    try {
      stream.controller = await new Log(this.kc).log(this.namespace, pod.name, AGENT_CONTAINER, stream.sink, {
        follow: true,
        timestamps: true,
        ...(sinceTime !== undefined && { sinceTime }),
      });
      return stream;
    } catch (err) {
      const code = statusOf(err);
      if (code === 403 || code === 401) throw new Error(kubeFailure(err, `read the log of pod ${pod.name} in namespace ${this.namespace}`, this.server));
      return code === 404 ? PodStream.done() : undefined; // not started yet, or the apiserver away: next round
    }
  }
}

/** `rover logs` for a kubernetes job, with Ctrl-C ending --follow; false when `job` is not on that backend. */
export async function kubeLogsCommand(config: RoverConfig, job: string, node: number | undefined, selection: LogSelection, follow: boolean): Promise<boolean> {
  const write = (text: string) => void process.stdout.write(text);
  const note = (text: string) => void process.stderr.write(text);
  return untilInterrupted((signal) => printKubeJobLogs({ config, job, node, selection, follow, signal, write, note }));
}
