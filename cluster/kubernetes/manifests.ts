// Pure builders of the Kubernetes objects of a job: the per-job ConfigMap that owns everything,
// the headless Service (stable DNS for rank 0), and one Pod per node incarnation.
import { configurationError } from '../../common/unhealableErrors.ts';
import type { V1Affinity, V1ConfigMap, V1EnvVar, V1OwnerReference, V1Pod, V1Service } from '@kubernetes/client-node';
import type { JobSpec, KubernetesOptions as SpecOptions, ResourcesSpec } from '../../common/spec/index.ts';
import type { NodeLaunch } from '../types.ts';

export const LABEL_JOB = 'rover.dev/job';
export const LABEL_NODE = 'rover.dev/node';
export const LABEL_INCARNATION = 'rover.dev/incarnation';
/** The job run a pod belongs to: its creation time in ms (the store's jobs.createdAt). */
export const LABEL_RUN = 'rover.dev/run';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** Name of the agent container in every node pod. */
export const AGENT_CONTAINER = 'agent';
/** Port the headless service names; the trainer's rendezvous port lives on rank 0. */
export const MASTER_PORT = 29500;

export type KubernetesOptions = SpecOptions & { image: string };

/** The job's kubernetes options with defaults; throws naming the field when the image is missing. */
export function kubernetesOptions(spec: JobSpec): KubernetesOptions {
  const k = spec.spec.kubernetes;
  if (!k?.image) throw configurationError(`job ${spec.metadata.name}: spec.kubernetes.image is required for the kubernetes backend`);
  return { ...k, image: k.image };
}

/** Name of the per-job ConfigMap and headless Service. */
export const jobObjectName = (jobId: string): string => `rover-${jobId}`;
/** Deterministic per incarnation, so a retried launch finds the pod it created. */
export const podName = (jobId: string, nodeId: number, incarnation: number): string => `rover-${jobId}-${nodeId}-${incarnation}`;
/** The pod's hostname: stable across incarnations, so `<host>.<service>` names the node. */
export const podHostname = (jobId: string, nodeId: number): string => `rover-${jobId}-${nodeId}`;
export const jobSelector = (jobId: string): string => `${LABEL_JOB}=${jobId}`;

export function jobLabels(jobId: string): Record<string, string> {
  return { [LABEL_JOB]: jobId, [LABEL_MANAGED_BY]: 'rover' };
}

export function ownerConfigMap(jobId: string, namespace: string): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: jobObjectName(jobId), namespace, labels: jobLabels(jobId) },
    data: { job: jobId },
  };
}

export function ownerReference(owner: { name: string; uid: string }): V1OwnerReference {
  return { apiVersion: 'v1', kind: 'ConfigMap', name: owner.name, uid: owner.uid };
}

export function headlessService(jobId: string, namespace: string, owner: V1OwnerReference): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: jobObjectName(jobId), namespace, labels: jobLabels(jobId), ownerReferences: [owner] },
    spec: {
      clusterIP: 'None',
      selector: { [LABEL_JOB]: jobId },
      // Pods are addressable before they are ready: rendezvous happens before readiness.
      publishNotReadyAddresses: true,
      ports: [{ name: 'master', port: MASTER_PORT, targetPort: MASTER_PORT }],
    },
  };
}

/** Kubernetes quantities: CPU in millicores, memory in bytes, GPUs as whole devices. */
export function resourceQuantities(r: ResourcesSpec): Record<string, string> {
  const q: Record<string, string> = { cpu: `${Math.max(1, Math.round(r.cpu * 1000))}m`, memory: String(r.memory) };
  if (r.gpu > 0) q['nvidia.com/gpu'] = String(r.gpu);
  return q;
}

export interface PodSettings {
  /** Command of the agent container (the image runs the Rover agent). */
  agentCommand: string[];
  /** Seconds the kubelet waits between SIGTERM and SIGKILL. */
  terminationGraceSeconds: number;
  /** Kubernetes nodes this pod must not be scheduled on (a predecessor failed its node check there). */
  avoidNodes?: string[];
  /** The job run (its creation time, ms): `rover logs --run current` tells runs apart by it. */
  run?: number;
}

/** Required node anti-affinity by node name, or undefined when there is nothing to avoid. */
function avoidNodesAffinity(nodes: string[] | undefined): V1Affinity | undefined {
  if (!nodes?.length) return undefined;
  return {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: nodes }] }],
      },
    },
  };
}

export function nodePod(launch: NodeLaunch, opts: KubernetesOptions, owner: V1OwnerReference, settings: PodSettings): V1Pod {
  const { jobId, nodeId, incarnation } = launch;
  const hostname = podHostname(jobId, nodeId);
  const service = jobObjectName(jobId);
  const env: V1EnvVar[] = Object.entries({
    ...launch.agentEnv,
    // The stable DNS name of this node through the headless service: rank 0's becomes MASTER_ADDR.
    ROVER_HOST: `${hostname}.${service}.${opts.namespace}.svc`,
  }).map(([name, value]) => ({ name, value }));
  env.push({ name: 'ROVER_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
  const quantities = resourceQuantities(launch.resources);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName(jobId, nodeId, incarnation),
      namespace: opts.namespace,
      labels: {
        ...launch.spec.metadata.labels,
        ...jobLabels(jobId),
        [LABEL_NODE]: String(nodeId),
        [LABEL_INCARNATION]: String(incarnation),
        ...(settings.run !== undefined && { [LABEL_RUN]: String(settings.run) }),
      },
      ownerReferences: [owner],
    },
    spec: {
      // The workflow decides about restarts (new incarnation), never the kubelet.
      restartPolicy: 'Never',
      hostname,
      subdomain: service,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: settings.terminationGraceSeconds,
      serviceAccountName: opts.serviceAccount,
      // The agent never calls the Kubernetes API: a pod gets an API token only when the spec
      // names a service account for the trainers' own use.
      automountServiceAccountToken: opts.serviceAccount !== undefined,
      imagePullSecrets: opts.imagePullSecrets.map((name) => ({ name })),
      nodeSelector: Object.keys(opts.nodeSelector).length > 0 ? opts.nodeSelector : undefined,
      tolerations: opts.tolerations.length > 0 ? opts.tolerations : undefined,
      priorityClassName: opts.priorityClass,
      affinity: avoidNodesAffinity(settings.avoidNodes),
      containers: [
        {
          name: AGENT_CONTAINER,
          image: opts.image,
          command: settings.agentCommand,
          env,
          ports: [{ name: 'master', containerPort: MASTER_PORT }],
          resources: { requests: quantities, limits: quantities },
        },
      ],
    },
  };
}
