// A throwaway Kubernetes control plane for tests: etcd + kube-apiserver on 127.0.0.1 with a
// token file, and kwok playing the kubelet of one fake node. kwok does not schedule, so a binder
// loop binds pending pods to the fake node. Binaries come from deploy/k8s-test/build.sh's cache.
// Pod logs: kwok serves a container's log from a file named by a kwok.x-k8s.io Logs object
// (servePodLog), on its kubelet-like HTTPS server at 127.0.0.1:<node port>, which the node's
// status advertises; kube-apiserver proxies GET pods/log there as to any kubelet.
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import https from 'node:https';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { freePort } from '../../deploy/local/devServer.ts';
import { waitUntil } from '../waits.ts';

const k8sTestDir = fileURLToPath(new URL('../../deploy/k8s-test/', import.meta.url));
export const FAKE_NODE = 'kwok-node-0';
/** The identity the deploy/ RoleBinding grants to: the worker's service account. */
export const WORKER_SA = { namespace: 'rover', name: 'rover-worker' };

function versions(): Record<string, string> {
  const text = readFileSync(path.join(k8sTestDir, 'versions.env'), 'utf8');
  return Object.fromEntries(text.split('\n').filter((l) => /^\w+=/.test(l)).map((l) => l.split('=') as [string, string]));
}

export interface KubeBinaries { etcd: string; apiserver: string; kwok: string }

/** The cached binaries, or the list of the missing ones. */
export function findKubeBinaries(): { binaries?: KubeBinaries; missing: string[] } {
  const v = versions();
  const cache = process.env.ROVER_K8S_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'rover', 'k8s');
  const binaries = {
    etcd: path.join(cache, `etcd-${v.ETCD_VERSION}`, 'etcd'),
    apiserver: path.join(cache, `kube-apiserver-${v.KUBE_VERSION}`, 'kube-apiserver'),
    kwok: path.join(cache, `kwok-${v.KWOK_VERSION}`, 'kwok'),
  };
  const missing = Object.values(binaries).filter((p) => !existsSync(p));
  return missing.length === 0 ? { binaries, missing } : { missing };
}

/**
 * Whether the Kubernetes tests can run. In CI a missing binary is an error (.ci/run builds
 * them); locally the tests skip with a loud message.
 */
export function kubeAvailable(): boolean {
  const { missing } = findKubeBinaries();
  if (missing.length === 0) return true;
  const msg = `Kubernetes test binaries missing (${missing.join(', ')}); run bash deploy/k8s-test/build.sh`;
  if (process.env.CI === 'true') throw new Error(msg);
  console.warn(`\n!!! SKIPPING Kubernetes tests: ${msg}\n`);
  return false;
}

export interface KubeCluster {
  dir: string;
  server: string;
  /** Admin (system:masters) kubeconfig. */
  kubeconfig: string;
  /** Kubeconfig of the worker's service account identity (RBAC from deploy/ applies). */
  workerKubeconfig: string;
  kc: KubeConfig;
  core: CoreV1Api;
  /**
   * Makes the fake kubelet serve `file` as the log of every container of the pod (CRI log
   * format: `<RFC3339Nano time> stdout F <text>` per line; appends show up under follow=true).
   * Resolves once the apiserver returns the pod's log, i.e. the pod is bound and kwok has it.
   */
  servePodLog(namespace: string, pod: string, file: string): Promise<void>;
  /** The apiserver's Prometheus metrics (e.g. apiserver_request_total by resource and verb). */
  metrics(): Promise<string>;
  restartApiserver(): Promise<void>;
  stop(): Promise<void>;
}

interface Proc { child: ChildProcess; log: string }

function startProc(bin: string, args: string[], log: string): Proc {
  const child = spawn(bin, args, { stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')], detached: true });
  child.on('error', () => {});
  return { child, log };
}

async function stopProc(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  try { process.kill(-p.child.pid!, 'SIGTERM'); } catch { return; }
  const done = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]);
  if (!done) try { process.kill(-p.child.pid!, 'SIGKILL'); } catch { /* gone */ }
  await exited;
}

/** GET over TLS with the apiserver's self-signed certificate; the status (0 when unreachable) and body. */
function httpsGet(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = https.get(url, { rejectUnauthorized: false, headers: { authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.on('timeout', () => req.destroy());
  });
}

const httpsStatus = async (url: string, token: string) => (await httpsGet(url, token)).status;

const tail = (p: Proc) => readFileSync(p.log, 'utf8').slice(-3000);

function kubeconfigFor(server: string, token: string, user: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'rover-test', cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'rover-test', context: { cluster: 'rover-test', user, namespace: 'default' } }],
    'current-context': 'rover-test',
  });
}

export async function startKubeCluster(): Promise<KubeCluster> {
  const { binaries: bin, missing } = findKubeBinaries();
  if (!bin) throw new Error(`missing ${missing.join(', ')}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rover-kube-'));
  const [etcdPort, peerPort, apiPort, kubeletPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const server = `https://127.0.0.1:${apiPort}`;

  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(path.join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(path.join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  const adminToken = randomBytes(16).toString('hex');
  const workerToken = randomBytes(16).toString('hex');
  const sa = `system:serviceaccount:${WORKER_SA.namespace}:${WORKER_SA.name}`;
  writeFileSync(
    path.join(dir, 'tokens.csv'),
    `${adminToken},admin,admin,"system:masters"\n${workerToken},${sa},worker,"system:serviceaccounts,system:serviceaccounts:${WORKER_SA.namespace}"\n`,
  );
  const kubeconfig = path.join(dir, 'admin.kubeconfig');
  const workerKubeconfig = path.join(dir, 'worker.kubeconfig');
  writeFileSync(kubeconfig, kubeconfigFor(server, adminToken, 'admin'));
  writeFileSync(workerKubeconfig, kubeconfigFor(server, workerToken, 'rover-worker'));
  mkdirSync(path.join(dir, 'certs'));

  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const etcd = startProc(bin.etcd, [
    '--name=rover', `--data-dir=${path.join(dir, 'etcd')}`,
    `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`, `--initial-cluster=rover=${peerUrl}`,
    '--log-level=warn',
  ], path.join(dir, 'etcd.log'));

  const apiserverArgs = [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${apiPort}`,
    // The loopback address may not be published as the kubernetes Service's endpoint.
    '--endpoint-reconciler-type=none',
    `--cert-dir=${path.join(dir, 'certs')}`,
    '--service-account-issuer=https://kubernetes.default.svc',
    `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    '--authorization-mode=RBAC',
    `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
    '--disable-admission-plugins=ServiceAccount',
    '--profiling=false',
    // pods/log goes to the node's InternalIP (127.0.0.1: kwok's server) at its kubelet port.
    '--kubelet-preferred-address-types=InternalIP',
  ];
  let apiserver: Proc | undefined;
  let kwok: Proc | undefined;
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);

  const startApiserver = async () => {
    apiserver = startProc(bin.apiserver, apiserverArgs, path.join(dir, 'apiserver.log'));
    const a = apiserver;
    await waitUntil(async () => {
      if (a.child.exitCode !== null) throw new Error(`kube-apiserver exited:\n${tail(a)}`);
      return (await httpsStatus(`${server}/readyz`, adminToken)) === 200;
    }, 'kube-apiserver ready', 180_000, 250);
  };

  let binding = true;
  let binder: Promise<void> | undefined;
  const stop = async () => {
    binding = false;
    await binder;
    await stopProc(kwok);
    await stopProc(apiserver);
    await stopProc(etcd);
    if (!process.env.ROVER_KEEP_KUBE) rmSync(dir, { recursive: true, force: true });
  };

  try {
    await startApiserver();
    await waitUntil(() => core.readNamespace({ name: 'default' }).then(() => true, () => false), 'namespace default', 60_000, 250);
    await core.createNode({ body: { metadata: { name: FAKE_NODE, annotations: { 'kwok.x-k8s.io/node': 'fake' }, labels: { type: 'kwok' } } } });
    await installLogsCrd(kc);
    kwok = startProc(bin.kwok, [
      `--kubeconfig=${kubeconfig}`, `--config=${path.join(k8sTestDir, 'kwok.yaml')}`,
      '--manage-all-nodes=false', '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      // The node's address is where the apiserver fetches pod logs: kwok's own server.
      '--cidr=10.244.0.0/16', '--node-ip=127.0.0.1',
      `--server-address=127.0.0.1:${kubeletPort}`, `--node-port=${kubeletPort}`, '--enable-crds=Logs',
    ], path.join(dir, 'kwok.log'));
    const k = kwok;
    await waitUntil(async () => {
      if (k.child.exitCode !== null) throw new Error(`kwok exited:\n${tail(k)}`);
      const node = await core.readNode({ name: FAKE_NODE });
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    }, 'kwok node ready', 60_000, 250);
  } catch (err) {
    await stop();
    throw err;
  }

  // The scheduler's job, minus the scheduling: bind every pending pod to the fake node, or, when
  // its nodeSelector does not match that node, mark it unschedulable in the scheduler's words.
  const nodeLabels = (await core.readNode({ name: FAKE_NODE })).metadata?.labels ?? {};
  const fits = (pod: V1Pod) => Object.entries(pod.spec?.nodeSelector ?? {}).every(([k, v]) => nodeLabels[k] === v);
  binder = (async () => {
    while (binding) {
      try {
        const pending = await core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=' });
        for (const pod of pending.items) {
          const { name, namespace } = pod.metadata!;
          if (pod.metadata?.deletionTimestamp) continue;
          if (!fits(pod)) {
            if (!pod.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False')) await markUnschedulable(core, pod);
            continue;
          }
          await core
            .createNamespacedPodBinding({ name: name!, namespace: namespace!, body: { metadata: { name }, target: { kind: 'Node', name: FAKE_NODE } } })
            .catch(() => {});
        }
      } catch {
        // apiserver restarting: try again
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  const custom = kc.makeApiClient(CustomObjectsApi);
  return {
    dir, server, kubeconfig, workerKubeconfig, kc, core,
    async servePodLog(namespace, pod, file) {
      const body = { apiVersion: `${KWOK_GROUP}/v1alpha1`, kind: 'Logs', metadata: { name: pod, namespace }, spec: { logs: [{ logsFile: file, follow: true }] } };
      await custom.createNamespacedCustomObject({ group: KWOK_GROUP, version: 'v1alpha1', namespace, plural: 'logs', body });
      await waitUntil(() => core.readNamespacedPodLog({ name: pod, namespace, tailLines: 1 }).then(() => true, () => false), `kwok to serve the log of ${pod}`, 60_000, 100);
    },
    async metrics() {
      const { status, body } = await httpsGet(`${server}/metrics`, adminToken);
      if (status !== 200) throw new Error(`kube-apiserver /metrics answered ${status}`);
      return body;
    },
    async restartApiserver() {
      await stopProc(apiserver);
      await startApiserver();
    },
    stop,
  };
}

const KWOK_GROUP = 'kwok.x-k8s.io';

/** kwok's Logs resource (pod → log file), as a schema-less CRD: kwok watches it (--enable-crds=Logs). */
async function installLogsCrd(kc: KubeConfig): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const name = `logs.${KWOK_GROUP}`;
  await ext.createCustomResourceDefinition({
    body: {
      metadata: { name },
      spec: {
        group: KWOK_GROUP,
        scope: 'Namespaced',
        names: { kind: 'Logs', listKind: 'LogsList', plural: 'logs', singular: 'logs' },
        versions: [{
          name: 'v1alpha1', served: true, storage: true, subresources: { status: {} },
          schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
        }],
      },
    },
  });
  await waitUntil(async () => (await ext.readCustomResourceDefinition({ name })).status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'), 'the Logs CRD established', 30_000, 100);
}

/** What kube-scheduler writes on a pod no node fits: PodScheduled False, reason Unschedulable. */
async function markUnschedulable(core: CoreV1Api, pod: V1Pod): Promise<void> {
  const condition = {
    type: 'PodScheduled',
    status: 'False',
    reason: 'Unschedulable',
    message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
    lastTransitionTime: new Date(),
  };
  await core
    .patchNamespacedPodStatus(
      { name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { status: { conditions: [condition] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    .catch(() => {});
}
