// Jobs on the kubernetes backend end to end: the real job workflow in the real worker process,
// against a real kube-apiserver with kwok as the kubelet. Agents never run under kwok, so no
// round closes: this is about the control plane — pods, service, failures, relaunch, scale, stop.
// The Brain worker of the same stack syncs its configurations from a ConfigMap (list + watch).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { withOperatorToken } from '../common/operatorToken.ts';
import { brainSyncStatusQuery, brainSyncWorkflowId } from '../workflows/brain/messages.ts';
import { scaleUpdate, statusQuery, stopSignal, type JobStatus } from '../workflows/job/messages.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { parsePrometheusText, sampleSum } from './promText.ts';
import { kubeAvailable, startKubeCluster, type KubeCluster } from './infra/kube.ts';
import { failPod, kubeJobSpec } from './infra/kubeJobs.ts';
import { repoRoot } from './jobFixtures.ts';
import { startTestStack, type TestStack } from './stack.ts';

describe.skipIf(!kubeAvailable())('elastic jobs on the kubernetes backend', () => {
  let cluster: KubeCluster;
  let stack: TestStack;
  // The sync workflow's id is the source's: unique on the suite's Temporal server.
  const brainSource = `kube-cm-${randomUUID().slice(0, 8)}`;
  const brainConfigMap = 'brain-e2e';

  beforeAll(async () => {
    cluster = await startKubeCluster();
    stack = await startTestStack('kubernetes jobs', {
      ROVER_KUBECONFIG: cluster.kubeconfig,
      ROVER_SHUTDOWN_GRACE_MS: '1000',
      ROVER_BRAIN_SOURCES: `${brainSource}=configmap:default/${brainConfigMap}`,
      ROVER_BRAIN_SYNC_INTERVAL_MS: '1000',
    });
    // The API is the Brain the workflow asks for the OOM plan.
    await Promise.all([stack.startWorker(), stack.startApi()]);
  }, 240_000);
  afterAll(async () => {
    await stack?.close();
    await cluster?.stop();
  });

  const pods = async (job: string): Promise<V1Pod[]> =>
    (await cluster.core.listNamespacedPod({ namespace: 'default', labelSelector: `rover.dev/job=${job}` })).items.filter((p) => !p.metadata?.deletionTimestamp);
  const podNames = async (job: string) => (await pods(job)).map((p) => p.metadata!.name!).sort();
  const waitPods = (job: string, names: string[], phase = 'Running') =>
    waitUntil(async () => {
      const now = await pods(job);
      const ok = JSON.stringify(now.map((p) => p.metadata!.name!).sort()) === JSON.stringify([...names].sort()) && now.every((p) => p.status?.phase === phase);
      return ok ? now : undefined;
    }, `pods of ${job} to be exactly ${names.join(', ')} (${phase})`, 90_000, 200);
  const failedEvent = (job: string, nodeId: number, incarnation: number) =>
    waitUntil(async () => {
      const events = await stack.store.nodeEvents.listAfter(job, 0, 1000);
      return events.find((e) => e.kind === 'node_failed' && e.nodeId === nodeId && e.incarnation === incarnation);
    }, `node_failed of ${job} node ${nodeId}#${incarnation}`, 60_000, 200);

  it('runs a 3-node job as pods, relaunches failed pods, scales 3→5→3 and stops clean', async () => {
    const job = 'kube';
    const handle = await submitJob(stack.client, kubeJobSpec(job, { nodes: 3, max: 5 }), { taskQueue: stack.config.temporal.taskQueue });

    // Launch: 3 pods with labels, env and resources, and the headless service.
    const launched = await waitPods(job, ['rover-kube-0-0', 'rover-kube-1-0', 'rover-kube-2-0']);
    for (const pod of launched) {
      const node = pod.metadata!.labels!['rover.dev/node']!;
      expect(pod.metadata?.labels).toMatchObject({ 'rover.dev/job': job, 'rover.dev/incarnation': '0', team: 'rover-tests' });
      const env = Object.fromEntries(pod.spec!.containers[0]!.env!.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
      expect(env).toMatchObject({ ROVER_JOB: job, ROVER_NODE: node, ROVER_INCARNATION: '0', ROVER_API_URL: stack.config.api.url });
      expect(env.ROVER_TOKEN).toMatch(/.+/);
      expect(pod.spec!.containers[0]!.resources).toEqual({
        requests: { cpu: '500m', memory: String(256 * 2 ** 20), 'nvidia.com/gpu': '1' },
        limits: { cpu: '500m', memory: String(256 * 2 ** 20), 'nvidia.com/gpu': '1' },
      });
      expect(pod.spec?.tolerations).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'rover.dev/dedicated', operator: 'Exists' })]));
    }
    const svc = await cluster.core.readNamespacedService({ name: 'rover-kube', namespace: 'default' });
    expect(svc.spec).toMatchObject({ clusterIP: 'None', selector: { 'rover.dev/job': job } });

    // Exit 137 → node_failed → relaunched as incarnation 1, the old pod deleted.
    await failPod(cluster.core, 'default', 'rover-kube-1-0', 137, 'Error');
    const failed = await failedEvent(job, 1, 0);
    expect(failed.data).toMatchObject({ exitCode: 137 });
    await waitPods(job, ['rover-kube-0-0', 'rover-kube-1-1', 'rover-kube-2-0']);

    // OOMKilled → the event carries oomKilled, and the node is relaunched with more memory.
    await failPod(cluster.core, 'default', 'rover-kube-2-0', 137, 'OOMKilled');
    const oom = await failedEvent(job, 2, 0);
    expect(oom.data).toMatchObject({ exitCode: 137, oomKilled: true });
    await waitPods(job, ['rover-kube-0-0', 'rover-kube-1-1', 'rover-kube-2-1']);
    const status: JobStatus = await handle.query(statusQuery);
    expect(status.nodeRelaunches).toBe(2);
    const relaunched = (await pods(job)).find((p) => p.metadata?.name === 'rover-kube-2-1');
    // The OOM path: the Brain's OOM plan doubles the memory of the new incarnation's pod.
    expect(relaunched?.spec?.containers[0]?.resources?.limits?.memory).toBe(String(2 * 256 * 2 ** 20));
    expect(status.plans?.some((p) => p.stage === 'oom')).toBe(true);

    // Scale 3 → 5 → 3.
    expect((await handle.executeUpdate(scaleUpdate, { args: [{ nodes: 5 }] })).targetNodes).toBe(5);
    await waitPods(job, ['rover-kube-0-0', 'rover-kube-1-1', 'rover-kube-2-1', 'rover-kube-3-0', 'rover-kube-4-0']);
    expect((await handle.executeUpdate(scaleUpdate, { args: [{ nodes: 3 }] })).targetNodes).toBe(3);
    await waitPods(job, ['rover-kube-0-0', 'rover-kube-1-1', 'rover-kube-2-1']);

    // Stop → every pod, the service and the owner ConfigMap deleted.
    await handle.signal(stopSignal, { reason: 'test over' });
    expect((await jobOutcome(handle)).phase).toBe('STOPPED');
    await waitUntil(async () => (await cluster.core.listNamespacedPod({ namespace: 'default', labelSelector: `rover.dev/job=${job}` })).items.length === 0, 'all pods gone', 60_000);
    await expect(cluster.core.readNamespacedService({ name: 'rover-kube', namespace: 'default' })).rejects.toMatchObject({ code: 404 });
    await expect(cluster.core.readNamespacedConfigMap({ name: 'rover-kube', namespace: 'default' })).rejects.toMatchObject({ code: 404 });
    expect(await podNames(job)).toEqual([]);
  });

  it('fails a job whose pod stays Unschedulable past pendingTimeout, in the scheduler\'s words', async () => {
    const job = 'kube-unschedulable';
    const spec = kubeJobSpec(job, { nodes: 1, maxNodeRelaunches: 0, nodeSelector: { type: 'gpu-a100' }, pendingTimeout: '5s' });
    const handle = await submitJob(stack.client, spec, { taskQueue: stack.config.temporal.taskQueue });
    // While it waits, the node row carries the scheduler's reason (what `rover status` shows).
    const row = await waitUntil(async () => (await stack.store.nodes.listByJob(job)).find((n) => n.pendingReason?.includes('Unschedulable')), 'the pending reason of node 0', 30_000, 200);
    expect(row.pendingReason).toMatch(/^pod not scheduled \(PodScheduled False\): Unschedulable: 0\/1 nodes are available: 1 node\(s\) didn't match Pod's node affinity\/selector/);
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('FAILED');
    expect(result.reason).toMatch(
      /^node 0 incarnation 0 still pending after 5s \(spec\.faultTolerance\.pendingTimeout\): pod not scheduled \(PodScheduled False\): Unschedulable: 0\/1 nodes are available: .*; node relaunch budget exhausted \(0\/0\) and 0 nodes left, below spec\.nodes\.min 1$/,
    );
    await waitUntil(async () => (await podNames(job)).length === 0, 'the pending pod deleted', 60_000);
  });

  it('misses no pod failure across an apiserver restart', async () => {
    const job = 'kube-restart';
    const handle = await submitJob(stack.client, kubeJobSpec(job, { nodes: 2 }), { taskQueue: stack.config.temporal.taskQueue });
    await waitPods(job, ['rover-kube-restart-0-0', 'rover-kube-restart-1-0']);
    await cluster.restartApiserver();
    await waitUntil(() => failPod(cluster.core, 'default', 'rover-kube-restart-0-0', 3, 'Error').then(() => true, () => false), 'chaos label', 60_000);
    expect((await failedEvent(job, 0, 0)).data).toMatchObject({ exitCode: 3 });
    await waitPods(job, ['rover-kube-restart-0-1', 'rover-kube-restart-1-0']);
    await handle.signal(stopSignal, { reason: 'test over' });
    expect((await jobOutcome(handle)).phase).toBe('STOPPED');
    await waitUntil(async () => (await podNames(job)).length === 0, 'all pods gone', 60_000);
  });

  it('serves Brain configurations from a ConfigMap through the sync workflow: an edited key after the next sync, a broken key rejected alone', async () => {
    const body = (data: Record<string, string>) => ({ metadata: { name: brainConfigMap }, data });
    const cv = (queue: string) => `name: cv\ninclude: {labels: {team: cv}}\nconfigure: {queue: ${queue}}\n`;
    const ml = 'name: ml\ninclude: {group: ml}\nconfigure: {optimizer: {margin: 0.3}}\n';
    const replace = (data: Record<string, string>) => cluster.core.replaceNamespacedConfigMap({ name: brainConfigMap, namespace: 'default', body: body(data) });
    const { operatorToken } = withOperatorToken(stack.config, { create: false });
    // What the Brain API serves, by configuration name.
    const served = async () => {
      const res = await fetch(`${stack.config.api.url}/brain/v1/configs`, { headers: { authorization: `Bearer ${operatorToken}` } });
      const { configs } = (await res.json()) as { configs: { source: string; name: string; configure: unknown }[] };
      return Object.fromEntries(configs.filter((c) => c.source === brainSource).map((c) => [c.name, c.configure]));
    };
    const servedEquals = async (want: object) => JSON.stringify(await served()) === JSON.stringify(want);
    const syncStatus = () => stack.client.workflow.getHandle(brainSyncWorkflowId(brainSource)).query(brainSyncStatusQuery);
    // The snapshot is served before the workflow records its version: wait for both.
    const published = (want: object, version: (v: number | null) => boolean, what: string) =>
      waitUntil(async () => {
        const s = await syncStatus().catch(() => undefined);
        return s && version(s.version) && (await servedEquals(want)) ? s : undefined;
      }, what, 60_000, 200);

    await cluster.core.createNamespacedConfigMap({ namespace: 'default', body: body({ 'cv.yaml': cv('v1'), 'ml.yaml': ml, 'notes.txt': 'not a configuration' }) });
    // Lists of ConfigMaps the apiserver answered (nothing else here lists them once started).
    const configMapLists = async () => sampleSum(parsePrometheusText(await cluster.metrics()), 'apiserver_request_total', { resource: 'configmaps', verb: 'LIST' });
    const listsBefore = await configMapLists();
    await stack.startBrainWorker();
    const first = await published({ cv: { queue: 'v1' }, ml: { optimizer: { margin: 0.3 } } }, (v) => v !== null, 'both keys served');
    expect(first).toMatchObject({ configs: 2, lastError: null, rejected: [] });
    const listsAtFirst = await configMapLists();
    // The source's one list (the metric sees it), then only its watch.
    expect(listsAtFirst - listsBefore).toBe(1);

    // An edited key: served after the next sync, read from the watched copy.
    await replace({ 'cv.yaml': cv('v2'), 'ml.yaml': ml });
    const edited = await published({ cv: { queue: 'v2' }, ml: { optimizer: { margin: 0.3 } } }, (v) => v === first.version! + 1, 'the edited key served');
    // Counted in syncs: the one that published it is at most the second after the edit.
    expect(edited.syncs - first.syncs).toBeLessThanOrEqual(2);
    expect(edited).toMatchObject({ lastError: null, rejected: [] });

    // A broken key beside a valid edit: the edit is served, the broken key rejected alone by key and field.
    await replace({ 'cv.yaml': cv('v3'), 'ml.yaml': ml, 'broken.yaml': 'name: broken\ninclude: {usr: ada}\nconfigure: {queue: bad}\n' });
    const rejected = `configmap default/${brainConfigMap} key broken.yaml: include.usr: unknown field (known: user, group, cluster, name, labels)`;
    const broken = await published({ cv: { queue: 'v3' }, ml: { optimizer: { margin: 0.3 } } }, (v) => v === edited.version! + 1, 'the valid edit beside the broken key served');
    expect(broken).toMatchObject({ configs: 2, lastError: null, rejected: [rejected] });
    // Every sync since the first read the watched copy: the apiserver was not asked for a list again.
    expect(broken.syncs - first.syncs).toBeGreaterThanOrEqual(2);
    expect(await configMapLists()).toBe(listsAtFirst);
    // `rover brain status` lists it under its source, and exits 1.
    const status = await promisify(execFile)(process.execPath, [path.join(repoRoot, 'bin/rover.js'), 'brain', 'status'], { env: { ...process.env, ...stack.env } }).then(
      ({ stdout }) => ({ code: 0, stdout }),
      (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
    );
    expect(status.code).toBe(1);
    expect(status.stdout).toContain(`${brainSource}:\n  ${rejected}`);
  });
});
