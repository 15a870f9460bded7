// Job specs and helpers for the Kubernetes tests (pods never really run: kwok plays the kubelet).
import { PatchStrategy, setHeaderOptions, type CoreV1Api } from '@kubernetes/client-node';
import { parseJobSpec, type JobSpec } from '../../common/spec/index.ts';

export interface KubeJobOptions {
  nodes?: number;
  max?: number;
  namespace?: string;
  maxNodeRelaunches?: number;
  /** Default: the fake node's labels ({type: kwok}); anything else leaves the pods Unschedulable. */
  nodeSelector?: Record<string, string>;
  pendingTimeout?: string;
}

/** A kubernetes-backend job with small resources and a join timeout long enough for a test. */
export function kubeJobSpec(name: string, o: KubeJobOptions = {}): JobSpec {
  const nodes = o.nodes ?? 3;
  const parsed = parseJobSpec({
    metadata: { name, user: 'tester', labels: { team: 'rover-tests' } },
    spec: {
      backend: 'kubernetes',
      nodes: { min: 1, max: o.max ?? nodes, initial: nodes },
      nprocPerNode: 1,
      entrypoint: { command: 'python3', args: ['train.py'] },
      resources: { cpu: '500m', memory: '256Mi', gpu: 1 },
      // Agents never register under kwok: pods stay "pending" to Rover unless a test says otherwise.
      faultTolerance: { maxNodeRelaunches: o.maxNodeRelaunches ?? 3, heartbeatInterval: '1s', heartbeatTimeout: '10m', pendingTimeout: o.pendingTimeout ?? '30m' },
      // Agents never join under kwok: keep the first round open for the whole test.
      rendezvous: { lastCallTimeout: '1s', joinTimeout: '30m' },
      kubernetes: {
        image: 'rover:test',
        namespace: o.namespace ?? 'default',
        tolerations: [{ key: 'rover.dev/dedicated', operator: 'Exists', effect: 'NoSchedule' }],
        nodeSelector: o.nodeSelector ?? { type: 'kwok' },
      },
    },
  });
  if (!parsed.ok) throw new Error(`bad test spec: ${JSON.stringify(parsed.errors)}`);
  return parsed.spec;
}

/** Makes kwok's chaos stage fail a running pod with this exit code and container reason. */
export async function failPod(core: CoreV1Api, namespace: string, name: string, exitCode: number, reason: string): Promise<void> {
  await core.patchNamespacedPod(
    {
      name,
      namespace,
      body: {
        metadata: {
          labels: { 'rover.dev/chaos': 'fail' },
          annotations: { 'rover.dev/chaos-exit-code': String(exitCode), 'rover.dev/chaos-reason': reason },
        },
      },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}
