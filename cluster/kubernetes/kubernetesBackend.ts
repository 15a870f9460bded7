// Kubernetes backend: a node is a Pod whose container runs the Rover agent, plus one headless
// Service per job; both are owned by a per-job ConfigMap, so deleting it collects everything
// (where a garbage collector runs — teardown still deletes each object explicitly).
import { CoreV1Api, type KubeConfig, type V1OwnerReference } from '@kubernetes/client-node';
import type { Logger } from '../../common/logger.ts';
import type { Node, Store } from '../../store/index.ts';
import type { ClusterBackend, DeadNode, LaunchResult, NodeLaunch, PendingReason } from '../types.ts';
import { classifyKubeError, createOrExisting, deleteIfPresent, statusOf } from './kubeClient.ts';
import {
  headlessService, jobObjectName, jobSelector, kubernetesOptions, nodePod, ownerConfigMap, ownerReference, podName,
} from './manifests.ts';
import { podEnd, podPending } from './podStatus.ts';
import { PodWatch } from './podWatch.ts';

export interface KubernetesBackendOptions {
  kubeConfig: KubeConfig;
  store: Store;
  logger: Logger;
  /** Command of the agent container. */
  agentCommand: string[];
  /** SIGTERM → SIGKILL grace the pods get, in ms. */
  terminationGraceMs: number;
}

/** How long after its node row a pod may still be missing from a synced cache (create in flight). */
const MISSING_GRACE_MS = 30_000;
/** Extra wait after the grace period before a delete is forced. */
const FORCE_AFTER_MS = 5_000;

export class KubernetesBackend implements ClusterBackend {
  readonly name = 'kubernetes' as const;
  readonly core: CoreV1Api;
  private readonly watches = new Map<string, PodWatch>();
  private readonly owners = new Map<string, V1OwnerReference>();
  private readonly namespaces = new Map<string, string>();
  /** Pods this backend is deleting on purpose: not reported as dead. */
  private readonly deleting = new Set<string>();

  constructor(private readonly o: KubernetesBackendOptions) {
    this.core = o.kubeConfig.makeApiClient(CoreV1Api);
  }

  async ensureNode(launch: NodeLaunch, _current: Node): Promise<LaunchResult> {
    const opts = kubernetesOptions(launch.spec);
    return this.classified(opts.namespace, () => this.createNode(launch, opts));
  }

  /** Runs calls in `namespace`, their unhealable errors (403, a missing namespace) classified. */
  private async classified<T>(namespace: string, calls: () => Promise<T>): Promise<T> {
    try {
      return await calls();
    } catch (err) {
      throw classifyKubeError(err, namespace);
    }
  }

  private async createNode(launch: NodeLaunch, opts: ReturnType<typeof kubernetesOptions>): Promise<LaunchResult> {
    const key = { jobId: launch.jobId, nodeId: launch.nodeId, incarnation: launch.incarnation };
    const namespace = opts.namespace;
    this.namespaces.set(launch.jobId, namespace);
    this.watchFor(namespace);
    const owner = await this.ensureJobObjects(launch.jobId, namespace);
    const avoid = launch.avoidHostOfIncarnation === undefined ? undefined : await this.hostOf(namespace, podName(launch.jobId, launch.nodeId, launch.avoidHostOfIncarnation));
    const run = (await this.o.store.jobs.get(launch.jobId))?.createdAt;
    const body = nodePod(launch, opts, owner, {
      agentCommand: this.o.agentCommand,
      terminationGraceSeconds: Math.ceil(this.o.terminationGraceMs / 1000),
      ...(avoid && { avoidNodes: [avoid] }),
      ...(run !== undefined && { run }),
    });
    const pod = body.metadata!.name!;
    const created = await createOrExisting(() => this.core.createNamespacedPod({ namespace, body }));
    if (!created) return { pid: null, logPath: null, host: null, created: false };
    this.o.logger.info({ ...key, pod, namespace }, 'pod created');
    // Bound at creation only when something set spec.nodeName; the scheduler places it later.
    return { pid: null, logPath: null, host: created.spec?.nodeName ?? null, created: true, launched: { pod, namespace } };
  }

  /** The Kubernetes node a pod ran on, from the watch cache (pods deleted since are tombstones). */
  private async hostOf(namespace: string, name: string): Promise<string | undefined> {
    const watch = this.watchFor(namespace);
    const pod = watch.get(namespace, name) ?? watch.tombstone(namespace, name);
    return pod?.spec?.nodeName ?? undefined;
  }

  async deleteNode(node: Node, graceMs: number): Promise<void> {
    const namespace = await this.namespaceOf(node.jobId);
    if (!namespace) return;
    const name = podName(node.jobId, node.nodeId, node.incarnation);
    const k = `${namespace}/${name}`;
    this.deleting.add(k);
    return this.classified(namespace, () => this.deletePod(node, namespace, name, graceMs)).finally(() => this.deleting.delete(k));
  }

  private async deletePod(node: Node, namespace: string, name: string, graceMs: number): Promise<void> {
    const gracePeriodSeconds = Math.max(1, Math.ceil(graceMs / 1000));
    await deleteIfPresent(() => this.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds }));
    if (await this.waitGone(namespace, name, graceMs + FORCE_AFTER_MS)) return;
    this.o.logger.warn({ jobId: node.jobId, nodeId: node.nodeId, incarnation: node.incarnation, pod: name }, 'pod outlived its grace period; forcing');
    await deleteIfPresent(() => this.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }));
    await this.waitGone(namespace, name, FORCE_AFTER_MS);
  }

  async findDeadNodes(nodes: Node[]): Promise<DeadNode[]> {
    const dead: DeadNode[] = [];
    for (const node of nodes) {
      const namespace = await this.namespaceOf(node.jobId);
      if (!namespace) continue;
      const watch = this.watchFor(namespace);
      if (watch.syncedAt === null) continue; // nothing known yet: ask again on the next poll
      const name = podName(node.jobId, node.nodeId, node.incarnation);
      if (this.deleting.has(`${namespace}/${name}`)) continue;
      const pod = watch.get(namespace, name);
      if (pod) {
        const end = podEnd(pod);
        if (end) dead.push({ node, ...end });
        continue;
      }
      const gone = watch.tombstone(namespace, name);
      if (gone) {
        const end = podEnd(gone);
        dead.push({ node, ...(end ?? {}), reason: `pod ${name} was deleted${end ? ` (${end.reason})` : ''}` });
      } else if (watch.syncedAt > node.createdAt + MISSING_GRACE_MS && !(await this.exists(namespace, name))) {
        dead.push({ node, reason: `pod ${name} not found` });
      }
    }
    return dead;
  }

  /** From the pod cache: why each launched node's pod has not started its agent (unschedulable, pulling its image, …). */
  async describePending(nodes: Node[]): Promise<PendingReason[]> {
    const pending: PendingReason[] = [];
    for (const node of nodes) {
      const namespace = await this.namespaceOf(node.jobId);
      if (!namespace) continue;
      const watch = this.watchFor(namespace);
      const name = podName(node.jobId, node.nodeId, node.incarnation);
      const pod = watch.get(namespace, name);
      const reason = pod ? podPending(pod) : watch.syncedAt !== null && watch.syncedAt > node.createdAt ? 'pod not created yet' : undefined;
      if (reason) pending.push({ node, reason });
    }
    return pending;
  }

  /** Deletes whatever the job left in the cluster: pods, the service and the owner ConfigMap. */
  async releaseJob(jobId: string): Promise<void> {
    const namespace = await this.namespaceOf(jobId);
    if (!namespace) return;
    await this.classified(namespace, () => this.deleteJobObjects(jobId, namespace));
  }

  private async deleteJobObjects(jobId: string, namespace: string): Promise<void> {
    const pods = await this.core.listNamespacedPod({ namespace, labelSelector: jobSelector(jobId) });
    await Promise.all(
      pods.items.map((p) => deleteIfPresent(() => this.core.deleteNamespacedPod({ name: p.metadata!.name!, namespace, gracePeriodSeconds: 0 }))),
    );
    const name = jobObjectName(jobId);
    await deleteIfPresent(() => this.core.deleteNamespacedService({ name, namespace }));
    await deleteIfPresent(() => this.core.deleteNamespacedConfigMap({ name, namespace }));
    this.owners.delete(jobId);
    this.o.logger.info({ jobId, namespace, pods: pods.items.length }, 'job objects deleted');
  }

  /** The pod cache of a namespace, started on first use. */
  watchFor(namespace: string): PodWatch {
    let watch = this.watches.get(namespace);
    if (!watch) {
      watch = new PodWatch({ kubeConfig: this.o.kubeConfig, core: this.core, namespace, logger: this.o.logger });
      this.watches.set(namespace, watch);
      watch.start();
    }
    return watch;
  }

  async close(): Promise<void> {
    await Promise.all([...this.watches.values()].map((w) => w.stop()));
    this.watches.clear();
  }

  /** Creates the owner ConfigMap and the headless Service once per job; both idempotent. */
  private async ensureJobObjects(jobId: string, namespace: string): Promise<V1OwnerReference> {
    const known = this.owners.get(jobId);
    if (known) return known;
    const name = jobObjectName(jobId);
    const cm =
      (await createOrExisting(() => this.core.createNamespacedConfigMap({ namespace, body: ownerConfigMap(jobId, namespace) }))) ??
      (await this.core.readNamespacedConfigMap({ name, namespace }));
    const owner = ownerReference({ name, uid: cm.metadata!.uid! });
    await createOrExisting(() => this.core.createNamespacedService({ namespace, body: headlessService(jobId, namespace, owner) }));
    this.owners.set(jobId, owner);
    return owner;
  }

  private async namespaceOf(jobId: string): Promise<string | undefined> {
    const known = this.namespaces.get(jobId);
    if (known) return known;
    const job = await this.o.store.jobs.get(jobId);
    if (!job) return undefined;
    const namespace = job.spec.spec.kubernetes?.namespace ?? 'default';
    this.namespaces.set(jobId, namespace);
    return namespace;
  }

  private async exists(namespace: string, name: string): Promise<boolean> {
    try {
      await this.core.readNamespacedPod({ name, namespace });
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }

  private async waitGone(namespace: string, name: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!(await this.exists(namespace, name))) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
