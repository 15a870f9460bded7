// The kubernetes backend, k8s monitor, ConfigMap source and deploy/ manifests against a real
// kube-apiserver (+ etcd) with kwok as the kubelet. Binaries: deploy/k8s-test/build.sh.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuthorizationV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { K8sMonitor, POD_METRICS } from '../brain/k8sMonitor.ts';
import { ConfigMapSource, registerConfigMapSource } from '../brain/sources/configMap.ts';
import { createSource, parseSourceList } from '../brain/sources/registry.ts';
import { launchNode } from '../activities/nodeLaunch.ts';
import { KubernetesBackend } from '../cluster/kubernetes/kubernetesBackend.ts';
import { jobObjectName, podName } from '../cluster/kubernetes/manifests.ts';
import { BACKEND_PERMISSIONS } from '../cluster/kubernetes/permissions.ts';
import type { NodeLaunch } from '../cluster/types.ts';
import { createLogger } from '../common/logger.ts';
import { openStore, type Store } from '../store/index.ts';
import { waitUntil } from './helpers.ts';
import { kubeAvailable, startKubeCluster, type KubeCluster } from './infra/kube.ts';
import { failPod, kubeJobSpec } from './infra/kubeJobs.ts';
import { repoRoot } from './jobFixtures.ts';

const logger = createLogger('k8s-test', 'warn');
const deployDir = path.join(repoRoot, 'deploy', 'kubernetes');
const manifests = (): KubernetesObject[] =>
  readdirSync(deployDir)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(path.join(deployDir, f), 'utf8')).map((d) => d.toJS() as KubernetesObject));

describe.skipIf(!kubeAvailable())('kubernetes backend against a real apiserver', () => {
  let cluster: KubeCluster;
  let store: Store;
  let backend: KubernetesBackend;
  let monitor: K8sMonitor;

  const newBackend = (kubeConfig: KubeConfig) =>
    new KubernetesBackend({ kubeConfig, store, logger, agentCommand: ['node', '/opt/rover/agent.mjs'], terminationGraceMs: 1000 });
  const launchFor = async (name: string, nodeId: number, incarnation = 0, namespace = 'default'): Promise<NodeLaunch> => {
    const spec = kubeJobSpec(name, { namespace });
    await store.jobs.create({ id: name, workflowId: `job-${name}`, user: 'tester', group: '', backend: 'kubernetes', spec, token: 't', phase: 'LAUNCHING' });
    return { jobId: name, nodeId, incarnation, spec, resources: spec.spec.resources, agentEnv: { ROVER_JOB: name, ROVER_NODE: String(nodeId) } };
  };
  const nodeRow = async (jobId: string, nodeId: number, incarnation = 0) => (await store.nodes.get({ jobId, nodeId, incarnation }))!;
  const running = (namespace: string, name: string) =>
    waitUntil(async () => (await cluster.core.readNamespacedPod({ name, namespace }).catch(() => undefined))?.status?.phase === 'Running', `pod ${name} running`, 60_000);

  beforeAll(async () => {
    cluster = await startKubeCluster();
    store = await openStore(`sqlite:${path.join(mkdtempSync(path.join(os.tmpdir(), 'rover-k8s-')), 'rover.db')}`);
    backend = newBackend(cluster.kc);
    monitor = new K8sMonitor({ kubeConfig: cluster.kc, store, logger });
    monitor.start();
  }, 240_000);
  afterAll(async () => {
    await monitor?.stop();
    await backend?.close();
    await store?.close();
    await cluster?.stop();
  });

  it('launches a node as a labelled pod with env and resources, plus the headless service; a retry creates nothing', async () => {
    const launch = await launchFor('launch', 0);
    // Not bound at creation (the scheduler places it later): no host yet.
    expect(await launchNode(store, backend, launch)).toMatchObject({ created: true, host: null });
    expect((await launchNode(store, backend, launch)).created).toBe(false);
    const launched = await store.nodeEvents.list('launch', { kinds: ['node_launched'] });
    expect(launched.map((e) => e.data)).toEqual([{ pod: 'rover-launch-0-0', namespace: 'default', host: null }]);
    const pod = await cluster.core.readNamespacedPod({ name: 'rover-launch-0-0', namespace: 'default' });
    expect(pod.metadata?.labels).toMatchObject({ 'rover.dev/job': 'launch', 'rover.dev/node': '0', 'rover.dev/incarnation': '0', team: 'rover-tests' });
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'ConfigMap', name: 'rover-launch' });
    const [agent] = pod.spec!.containers;
    expect(agent?.image).toBe('rover:test');
    expect(agent?.command).toEqual(['node', '/opt/rover/agent.mjs']);
    expect(agent?.resources?.limits).toEqual({ cpu: '500m', memory: String(256 * 2 ** 20), 'nvidia.com/gpu': '1' });
    expect(agent?.env).toEqual(expect.arrayContaining([{ name: 'ROVER_JOB', value: 'launch' }, { name: 'ROVER_HOST', value: 'rover-launch-0.rover-launch.default.svc' }]));
    expect(pod.spec).toMatchObject({ restartPolicy: 'Never', subdomain: 'rover-launch', nodeSelector: { type: 'kwok' } });
    const svc = await cluster.core.readNamespacedService({ name: 'rover-launch', namespace: 'default' });
    expect(svc.spec).toMatchObject({ clusterIP: 'None', selector: { 'rover.dev/job': 'launch' } });
    await running('default', 'rover-launch-0-0');
    expect(await backend.findDeadNodes([await nodeRow('launch', 0)])).toEqual([]);
  });

  it('keeps a node relaunched after a failed node check off the Kubernetes node its predecessor ran on', async () => {
    const launch = await launchFor('avoid', 0);
    await launchNode(store, backend, launch);
    await running('default', 'rover-avoid-0-0');
    const host = (await cluster.core.readNamespacedPod({ name: 'rover-avoid-0-0', namespace: 'default' })).spec?.nodeName;
    expect(host).toBeTruthy();
    // As the workflow does it: the faulty pod is removed first, then its successor launched.
    await backend.deleteNode(await nodeRow('avoid', 0), 1000);
    await launchNode(store, backend, { ...launch, incarnation: 1, avoidHostOfIncarnation: 0 });
    const pod = await cluster.core.readNamespacedPod({ name: 'rover-avoid-0-1', namespace: 'default' });
    expect(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      { matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: [host] }] },
    ]);
  });

  it('reads a chaos failure with exit 137 / OOMKilled from the pod cache, and the monitor records it', async () => {
    const launch = await launchFor('oom', 1);
    await launchNode(store, backend, launch);
    await running('default', 'rover-oom-1-0');
    await failPod(cluster.core, 'default', 'rover-oom-1-0', 137, 'OOMKilled');
    const node = await nodeRow('oom', 1);
    const [dead] = await waitUntil(async () => {
      const d = await backend.findDeadNodes([node]);
      return d.length > 0 ? d : undefined;
    }, 'the failure in the cache', 60_000);
    expect(dead).toMatchObject({ exitCode: 137, oomKilled: true });
    expect(dead?.reason).toContain('OOMKilled');
    const phases = await waitUntil(async () => {
      const rows = await store.metrics.list('oom', POD_METRICS.phase);
      return rows.some((r) => r.labels.phase === 'Failed') ? rows : undefined;
    }, 'monitor phase samples', 30_000);
    expect(phases.find((r) => r.labels.phase === 'Failed')?.labels).toMatchObject({ exitCode: '137', reason: 'OOMKilled', pod: 'rover-oom-1-0' });
    expect(await store.metrics.list('oom', POD_METRICS.oomKilled)).toHaveLength(1);
    expect((await store.metrics.list('oom', POD_METRICS.memoryRequest))[0]?.value).toBe(256 * 2 ** 20);
  });

  it('reports a pod deleted by someone else as lost, without an exit code', async () => {
    await launchNode(store, backend, await launchFor('evicted', 0));
    await running('default', 'rover-evicted-0-0');
    await cluster.core.deleteNamespacedPod({ name: 'rover-evicted-0-0', namespace: 'default', gracePeriodSeconds: 0 });
    const node = await nodeRow('evicted', 0);
    const [dead] = await waitUntil(async () => {
      const d = await backend.findDeadNodes([node]);
      return d.length > 0 ? d : undefined;
    }, 'the deletion in the cache', 60_000);
    expect(dead?.reason).toMatch(/pod rover-evicted-0-0 (is being deleted|was deleted)/);
    expect(dead?.exitCode).toBeUndefined();
  });

  it('keeps watching across an apiserver restart and misses no pod failure', async () => {
    const launch = await launchFor('restart', 0);
    await launchNode(store, backend, launch);
    await running('default', 'rover-restart-0-0');
    const watch = backend.watchFor('default');
    const connects = watch.connects;
    await cluster.restartApiserver();
    // Fail the pod at once, likely before the watch has reconnected: it resumes from its version.
    await waitUntil(() => failPod(cluster.core, 'default', 'rover-restart-0-0', 1, 'Error').then(() => true, () => false), 'chaos label', 60_000);
    const node = await nodeRow('restart', 0);
    const [dead] = await waitUntil(async () => {
      const d = await backend.findDeadNodes([node]);
      return d.length > 0 ? d : undefined;
    }, 'the failure after the restart', 90_000);
    expect(dead).toMatchObject({ exitCode: 1 });
    expect(watch.connects).toBeGreaterThan(connects);
  });

  it('deletes a pod gracefully, and releaseJob deletes pods, the service and the owner ConfigMap', async () => {
    const launch = await launchFor('teardown', 0);
    await launchNode(store, backend, launch);
    await launchNode(store, backend, { ...launch, nodeId: 1 });
    await running('default', 'rover-teardown-0-0');
    await backend.deleteNode(await nodeRow('teardown', 0), 1000);
    await expect(cluster.core.readNamespacedPod({ name: 'rover-teardown-0-0', namespace: 'default' })).rejects.toMatchObject({ code: 404 });
    await backend.releaseJob('teardown');
    const left = await cluster.core.listNamespacedPod({ namespace: 'default', labelSelector: 'rover.dev/job=teardown' });
    expect(left.items.filter((p) => !p.metadata?.deletionTimestamp)).toEqual([]);
    await expect(cluster.core.readNamespacedService({ name: jobObjectName('teardown'), namespace: 'default' })).rejects.toMatchObject({ code: 404 });
    await expect(cluster.core.readNamespacedConfigMap({ name: jobObjectName('teardown'), namespace: 'default' })).rejects.toMatchObject({ code: 404 });
  });

  it('accepts every deploy/ manifest in a server-side dry run', async () => {
    const objects = KubernetesObjectApi.makeApiClient(cluster.kc);
    const docs = manifests();
    expect(docs.map((d) => d.kind)).toEqual(expect.arrayContaining(['Deployment', 'StatefulSet', 'Role', 'RoleBinding', 'Service']));
    await objects.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'rover' } }).catch(() => undefined);
    for (const doc of docs) {
      const applied = await objects.patch(doc, undefined, 'All', 'rover-test', true, PatchStrategy.ServerSideApply);
      expect(applied.metadata?.name).toBe(doc.metadata?.name);
    }
  });

  it('grants the worker exactly the calls the backend makes, and the backend runs with it', async () => {
    const objects = KubernetesObjectApi.makeApiClient(cluster.kc);
    await objects.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'rover' } }).catch(() => undefined);
    const rbac = manifests().filter((d) => d.metadata?.name === 'rover-worker');
    for (const doc of rbac) await objects.patch(doc, undefined, undefined, 'rover-test', true, PatchStrategy.ServerSideApply);
    const role = rbac.find((d) => d.kind === 'Role') as KubernetesObject & { rules: { resources: string[]; verbs: string[] }[] };
    const granted = Object.fromEntries(role.rules.flatMap((r) => r.resources.map((res) => [res, [...r.verbs].sort()])));
    expect(granted).toEqual(Object.fromEntries(Object.entries(BACKEND_PERMISSIONS).map(([r, v]) => [r, [...v].sort()])));

    const workerKc = new KubeConfig();
    workerKc.loadFromFile(cluster.workerKubeconfig);
    const authz = workerKc.makeApiClient(AuthorizationV1Api);
    const allowed = async (resource: string, verb: string, subresource?: string) =>
      (await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { namespace: 'rover', resource, verb, subresource } } } })).status?.allowed ?? false;
    // The authorizer learns the new binding through its informers.
    await waitUntil(() => allowed('pods', 'create'), 'the RoleBinding to take effect', 30_000);
    for (const resource of ['pods', 'services', 'configmaps', 'secrets']) {
      for (const verb of ['create', 'get', 'list', 'watch', 'update', 'patch', 'delete', 'deletecollection']) {
        expect({ resource, verb, allowed: await allowed(resource, verb) }).toEqual({ resource, verb, allowed: BACKEND_PERMISSIONS[resource]?.includes(verb) ?? false });
      }
    }
    expect(await allowed('pods', 'create', 'binding')).toBe(false);
    expect(await allowed('pods', 'create', 'exec')).toBe(false);

    // The backend's whole cycle under the worker's identity: launch, watch, fail, delete, release.
    const worker = newBackend(workerKc);
    try {
      const launch = await launchFor('rbac', 0, 0, 'rover');
      expect((await launchNode(store, worker, launch)).created).toBe(true);
      expect((await launchNode(store, worker, launch)).created).toBe(false);
      await running('rover', podName('rbac', 0, 0));
      await failPod(cluster.core, 'rover', podName('rbac', 0, 0), 2, 'Error');
      const node = await nodeRow('rbac', 0);
      await waitUntil(async () => (await worker.findDeadNodes([node])).length > 0, 'failure seen with the worker role', 60_000);
      await worker.deleteNode(node, 1000);
      await worker.releaseJob('rbac');
    } finally {
      await worker.close();
    }
  });

  it('keeps Brain configurations from a ConfigMap by list + watch, a broken key rejected alone', async () => {
    await cluster.core.createNamespacedConfigMap({
      namespace: 'default',
      body: {
        metadata: { name: 'brain-config' },
        data: {
          'a.yaml': 'name: big-jobs\npriority: 10\ninclude: { group: ml }\nconfigure: { optimizer: { margin: 0.3 } }\n',
          'notes.txt': 'ignored',
        },
      },
    });
    // As the worker builds it from ROVER_BRAIN_SOURCES.
    registerConfigMapSource({ kubeconfig: cluster.kubeconfig, inCluster: false });
    const [source] = parseSourceList('cm=configmap:default/brain-config').map((def) => createSource(def, { store }));
    expect(source?.location).toBe('configmap default/brain-config');
    const cm = source as ConfigMapSource;
    try {
      const read = await cm.read();
      expect(read.configs.map((c) => c.config.name)).toEqual(['big-jobs']);
      expect(read.errors).toEqual([]);
      // An edit arrives by the watch: later reads serve it without listing again.
      await cluster.core.replaceNamespacedConfigMap({
        name: 'brain-config',
        namespace: 'default',
        body: {
          metadata: { name: 'brain-config' },
          data: {
            'a.yaml': 'name: big-jobs\npriority: 10\ninclude: { group: ml }\nconfigure: { optimizer: { margin: 0.5 } }\n',
            'b.yaml': 'name: broken\nconfigure: { optimizer: { efficiencyThreshold: 2 } }\n',
          },
        },
      });
      const edited = await waitUntil(async () => {
        const r = await cm.read();
        return r.configs[0]?.config.configure.optimizer?.margin === 0.5 ? r : undefined;
      }, 'the edit to arrive by the watch', 30_000, 100);
      // The broken key is rejected alone, named with its field.
      expect(edited.errors).toEqual(['configmap default/brain-config key b.yaml: configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2)']);
      expect(cm.lists).toBe(1);
      await cluster.core.deleteNamespacedConfigMap({ name: 'brain-config', namespace: 'default' });
      await waitUntil(() => cm.read().then(() => false, (err: Error) => /not found/.test(err.message)), 'the deletion to arrive by the watch', 30_000, 100);
    } finally {
      await cm.stop();
    }
    const missing = new ConfigMapSource('cm', 'default/missing', cluster.kc);
    await expect(missing.read()).rejects.toThrow(/configmap default\/missing: not found/);
    await missing.stop();
  });
});
