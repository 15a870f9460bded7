import { describe, expect, it } from 'vitest';
import { parseJobSpec } from '../../common/spec/index.ts';
import { headlessService, kubernetesOptions, nodePod, podName, resourceQuantities } from './manifests.ts';

const spec = (kubernetes: Record<string, unknown>) => {
  const parsed = parseJobSpec({
    metadata: { name: 'mnist', labels: { team: 'a' } },
    spec: { backend: 'kubernetes', entrypoint: { command: 'python3' }, resources: { cpu: 2, memory: '4Gi', gpu: 0 }, kubernetes },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.spec;
};
const owner = { apiVersion: 'v1', kind: 'ConfigMap', name: 'rover-mnist', uid: 'u1' };

describe('kubernetes manifests', () => {
  it('names pods per incarnation and converts resources to quantities', () => {
    expect(podName('mnist', 3, 2)).toBe('rover-mnist-3-2');
    expect(resourceQuantities({ cpu: 0.5, memory: 2 ** 30, gpu: 2 })).toEqual({ cpu: '500m', memory: String(2 ** 30), 'nvidia.com/gpu': '2' });
    expect(resourceQuantities({ cpu: 2, memory: 1e6, gpu: 0 })).toEqual({ cpu: '2000m', memory: '1000000' });
  });

  it('builds the node pod with scheduling options from the spec', () => {
    const s = spec({
      image: 'r:1', namespace: 'ml', serviceAccount: 'trainer', imagePullSecrets: ['regcred'],
      nodeSelector: { pool: 'gpu' }, tolerations: [{ key: 'gpu', operator: 'Exists' }], priorityClass: 'high',
    });
    const pod = nodePod(
      { jobId: 'mnist', nodeId: 1, incarnation: 0, spec: s, resources: s.spec.resources, agentEnv: { ROVER_JOB: 'mnist' } },
      kubernetesOptions(s), owner, { agentCommand: ['agent'], terminationGraceSeconds: 10 },
    );
    expect(pod.metadata).toMatchObject({ name: 'rover-mnist-1-0', namespace: 'ml', ownerReferences: [owner] });
    expect(pod.spec).toMatchObject({
      serviceAccountName: 'trainer', imagePullSecrets: [{ name: 'regcred' }], nodeSelector: { pool: 'gpu' },
      tolerations: [{ key: 'gpu', operator: 'Exists' }], priorityClassName: 'high', hostname: 'rover-mnist-1', subdomain: 'rover-mnist',
      terminationGracePeriodSeconds: 10, automountServiceAccountToken: true,
    });
    expect(pod.spec?.containers[0]?.env).toContainEqual({ name: 'ROVER_HOST', value: 'rover-mnist-1.rover-mnist.ml.svc' });
    expect(headlessService('mnist', 'ml', owner).spec).toMatchObject({ clusterIP: 'None', selector: { 'rover.dev/job': 'mnist' } });
  });

  it('gives a pod no Kubernetes API token unless the spec names a service account for it', () => {
    const s = spec({ image: 'r:1' });
    const pod = nodePod({ jobId: 'mnist', nodeId: 0, incarnation: 0, spec: s, resources: s.spec.resources, agentEnv: {} }, kubernetesOptions(s), owner, { agentCommand: ['agent'], terminationGraceSeconds: 10 });
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    expect(pod.spec?.serviceAccountName).toBeUndefined();
  });

  it('keeps a relaunched pod off the Kubernetes node its predecessor failed the node check on', () => {
    const s = spec({ image: 'r:1' });
    const launch = { jobId: 'mnist', nodeId: 1, incarnation: 1, spec: s, resources: s.spec.resources, agentEnv: {} };
    const settings = { agentCommand: ['agent'], terminationGraceSeconds: 10 };
    expect(nodePod(launch, kubernetesOptions(s), owner, settings).spec?.affinity).toBeUndefined();
    const avoiding = nodePod(launch, kubernetesOptions(s), owner, { ...settings, avoidNodes: ['kwok-node-0'] });
    expect(avoiding.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      { matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['kwok-node-0'] }] },
    ]);
  });
});
