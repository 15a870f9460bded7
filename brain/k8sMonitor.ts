// The Brain's k8s monitor: watches Rover pods in every namespace and records their lifecycle
// (phase changes, exit codes, OOM kills, deletion) and resource requests into the metrics table,
// where the optimizers read job history. Relists replay unchanged pods: only changes are written.
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { LABEL_INCARNATION, LABEL_JOB, LABEL_NODE } from '../cluster/kubernetes/manifests.ts';
import { PodWatch } from '../cluster/kubernetes/podWatch.ts';
import type { Logger } from '../common/logger.ts';
import type { NewMetric, Store } from '../store/index.ts';

/** Metric names the monitor writes; labels carry namespace, pod and phase. */
export const POD_METRICS = {
  /** On every phase change; value: PHASE_CODES[phase]. Labels add reason and exitCode when ended. */
  phase: 'k8s_pod_phase',
  /** Once per pod: its requests (cores, bytes, devices). */
  cpuRequest: 'k8s_pod_cpu_request',
  memoryRequest: 'k8s_pod_memory_request',
  gpuRequest: 'k8s_pod_gpu_request',
  /** Value 1 when a container of the pod was OOMKilled. */
  oomKilled: 'k8s_pod_oom_killed',
  /** Value 1 when the pod object is deleted. */
  deleted: 'k8s_pod_deleted',
} as const;

export const PHASE_CODES: Record<string, number> = { Pending: 0, Running: 1, Succeeded: 2, Failed: 3, Unknown: 4 };

/** "500m" → 0.5, "2" → 2; "1Gi" → 2^30, "512M" → 512e6. */
export function parseQuantity(q: string | undefined): number | undefined {
  if (q === undefined) return undefined;
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(q.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const units: Record<string, number> = {
    '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40,
  };
  const unit = units[m[2] ?? ''];
  return unit === undefined ? undefined : n * unit;
}

interface Seen { phase: string; oom: boolean }

export class K8sMonitor {
  private readonly watch: PodWatch;
  private readonly seen = new Map<string, Seen>();
  private pending: Promise<void> = Promise.resolve();
  /** Samples written so far; tests and logs read it. */
  recorded = 0;

  constructor(o: { kubeConfig: KubeConfig; store: Store; logger: Logger; namespace?: string }) {
    this.watch = new PodWatch({
      kubeConfig: o.kubeConfig,
      core: o.kubeConfig.makeApiClient(CoreV1Api),
      namespace: o.namespace,
      logger: o.logger,
      onEvent: (type, pod) => {
        const samples = this.observe(type, pod);
        if (samples.length === 0) return;
        // Serialised, so a pod's samples land in order; a failed write is logged, not fatal.
        this.pending = this.pending
          .then(() => o.store.metrics.record(samples))
          .then(() => { this.recorded += samples.length; })
          .catch((err) => o.logger.error({ err: String(err) }, 'k8s monitor could not record pod samples'));
      },
    });
  }

  start(): void {
    this.watch.start();
  }

  async stop(): Promise<void> {
    await this.watch.stop();
    await this.pending;
  }

  /** The samples a pod event adds: nothing when the pod did not change in a way we record. */
  observe(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: V1Pod): NewMetric[] {
    const jobId = pod.metadata?.labels?.[LABEL_JOB];
    const uid = pod.metadata?.uid;
    if (!jobId || !uid) return [];
    const base = {
      jobId,
      nodeId: intLabel(pod, LABEL_NODE),
      incarnation: intLabel(pod, LABEL_INCARNATION),
    };
    const labels = { namespace: pod.metadata?.namespace ?? '', pod: pod.metadata?.name ?? '' };
    const samples: NewMetric[] = [];
    const before = this.seen.get(uid);
    if (type === 'DELETED') {
      this.seen.delete(uid);
      return [{ ...base, name: POD_METRICS.deleted, value: 1, labels }];
    }
    if (!before) {
      const requests = pod.spec?.containers.reduce(
        (sum, c) => ({
          cpu: sum.cpu + (parseQuantity(c.resources?.requests?.cpu) ?? 0),
          memory: sum.memory + (parseQuantity(c.resources?.requests?.memory) ?? 0),
          gpu: sum.gpu + (parseQuantity(c.resources?.requests?.['nvidia.com/gpu']) ?? 0),
        }),
        { cpu: 0, memory: 0, gpu: 0 },
      );
      if (requests) {
        samples.push(
          { ...base, name: POD_METRICS.cpuRequest, value: requests.cpu, labels },
          { ...base, name: POD_METRICS.memoryRequest, value: requests.memory, labels },
          { ...base, name: POD_METRICS.gpuRequest, value: requests.gpu, labels },
        );
      }
    }
    const phase = pod.status?.phase ?? 'Pending';
    const terminated = pod.status?.containerStatuses?.map((c) => c.state?.terminated).find((t) => t);
    const oom = terminated?.reason === 'OOMKilled';
    if (before?.phase !== phase) {
      samples.push({
        ...base,
        name: POD_METRICS.phase,
        value: PHASE_CODES[phase] ?? PHASE_CODES.Unknown!,
        labels: {
          ...labels,
          phase,
          ...(pod.spec?.nodeName && { host: pod.spec.nodeName }),
          ...(terminated && { exitCode: String(terminated.exitCode), reason: terminated.reason ?? '' }),
          ...(!terminated && pod.status?.reason && { reason: pod.status.reason }),
        },
      });
    }
    if (oom && !before?.oom) samples.push({ ...base, name: POD_METRICS.oomKilled, value: 1, labels });
    this.seen.set(uid, { phase, oom });
    return samples;
  }
}

function intLabel(pod: V1Pod, key: string): number | null {
  const v = pod.metadata?.labels?.[key];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
}
