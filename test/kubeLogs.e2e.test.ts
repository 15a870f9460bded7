// `rover logs` of kubernetes-backend jobs, through a real kube-apiserver: the CLI lists the job's
// pods and reads each pod's log (pods/log), which the apiserver fetches from the node's kubelet.
// kwok plays that kubelet and serves each pod's log from a file this test writes (CRI format),
// so headers, --tail, --since, --node, --run and --follow are checked on real API answers.
import { execFile, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { printKubeJobLogs } from '../cli/kubeLogs.ts';
import { parseLogSelection } from '../cli/logs.ts';
import { launchNode } from '../activities/nodeLaunch.ts';
import { KubernetesBackend } from '../cluster/kubernetes/kubernetesBackend.ts';
import { podName } from '../cluster/kubernetes/manifests.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { freePort } from '../deploy/local/devServer.ts';
import { openStore, type Store } from '../store/index.ts';
import { waitUntil } from './helpers.ts';
import { kubeAvailable, startKubeCluster, type KubeCluster } from './infra/kube.ts';
import { failPod, kubeJobSpec } from './infra/kubeJobs.ts';
import { repoRoot } from './jobFixtures.ts';

const run = promisify(execFile);
const logger = createLogger('kube-logs-test', 'error');
const MIN = 60_000;

/** One kubelet (CRI) log line written `agoMs` before now. */
const cri = (agoMs: number, text: string) => `${new Date(Date.now() - agoMs).toISOString()} stdout F ${text}\n`;
/** A line of the agent's own (pino) log, which `rover logs` shows only with --agent. */
const agentLine = (msg: string) => JSON.stringify({ level: 30, time: Date.now(), name: 'agent', msg });
/** Launch times differ per pod: the output's structure is compared without them. */
const withoutLaunchTimes = (out: string) => out.replace(/ · launched \d{4}-\d\d-\d\dT[\d:.]+Z · /g, ' · launched T · ');

describe.skipIf(!kubeAvailable())('rover logs of kubernetes jobs (pod logs through the apiserver)', () => {
  let cluster: KubeCluster;
  let store: Store;
  let backend: KubernetesBackend;
  let home: string;
  let storeUrl: string;
  const runStart = new Map<string, string>();

  beforeAll(async () => {
    cluster = await startKubeCluster();
    home = mkdtempSync(path.join(os.tmpdir(), 'rover-kube-logs-'));
    mkdirSync(path.join(home, 'pod-logs'));
    storeUrl = `sqlite:${path.join(home, 'rover.db')}`;
    store = await openStore(storeUrl);
    backend = new KubernetesBackend({ kubeConfig: cluster.kc, store, logger, agentCommand: ['node', '/opt/rover/agent.mjs'], terminationGraceMs: 1000 });
  }, 240_000);
  afterAll(async () => {
    await backend?.close();
    await store?.close();
    await cluster?.stop();
  });

  /** The CLI's environment; an `extra` value undefined removes that variable. */
  const env = (extra: Record<string, string | undefined> = {}) => {
    const all: Record<string, string | undefined> = { ...process.env, ROVER_HOME: home, ROVER_STORE_URL: storeUrl, ROVER_KUBECONFIG: cluster.kubeconfig, ...extra };
    return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
  };
  const rover = async (args: string[], extra?: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await run(process.execPath, [path.join(repoRoot, 'bin/rover.js'), 'logs', ...args], { env: env(extra) });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  /** `rover logs <job> …` in this process (the CLI's own code after its option parsing): stdout and stderr. */
  const logsOf = async (job: string, o: { node?: number; tail?: string; since?: string; run?: string; agent?: boolean } = {}, extra?: Record<string, string | undefined>) => {
    let stdout = '';
    let stderr = '';
    const selection = parseLogSelection({ run: o.run ?? 'current', tail: o.tail, since: o.since, agent: o.agent });
    const found = await printKubeJobLogs({
      config: loadConfig(env(extra)), job, node: o.node, selection, follow: false,
      write: (text) => void (stdout += text), note: (text) => void (stderr += text),
    });
    expect(found).toBe(true);
    return { stdout, stderr };
  };
  const createJob = async (job: string, namespace = 'default', phase = 'RUNNING', s: Store = store) => {
    const spec = kubeJobSpec(job, { namespace });
    await s.jobs.create({ id: job, workflowId: `job-${job}`, user: 'tester', group: '', backend: 'kubernetes', spec, token: 't', phase });
    runStart.set(job, new Date((await s.jobs.get(job))!.createdAt).toISOString());
  };
  /** A node incarnation's pod, created by the backend, whose log kwok serves from a file; returns the file. */
  const launch = async (job: string, nodeId: number, incarnation: number, log: string, namespace = 'default'): Promise<string> => {
    const spec = kubeJobSpec(job, { namespace });
    await launchNode(store, backend, { jobId: job, nodeId, incarnation, spec, resources: spec.spec.resources, agentEnv: { ROVER_JOB: job, ROVER_NODE: String(nodeId) } });
    const name = podName(job, nodeId, incarnation);
    const file = path.join(home, 'pod-logs', `${namespace}-${name}.log`);
    writeFileSync(file, log);
    await cluster.servePodLog(namespace, name, file);
    return file;
  };
  const header = (job: string, node: number, incarnation: number, run = runStart.get(job)) =>
    `=== rover run ${run} · node ${node} · incarnation ${incarnation} · launched T · pod ${podName(job, node, incarnation)} ===`;

  describe('a job with two nodes, node 0 relaunched once', () => {
    const joined = agentLine('joined round 1');
    beforeAll(async () => {
      await createJob('klog');
      await launch('klog', 0, 0, cri(15 * MIN, 'n0 i0 step 1') + cri(15 * MIN - 10, 'n0 i0 step 2') + cri(15 * MIN - 20, 'n0 i0 step 3'));
      await failPod(cluster.core, 'default', podName('klog', 0, 0), 137, 'Error');
      await launch('klog', 0, 1, cri(5 * MIN, 'n0 i1 step 4') + cri(4 * MIN, joined) + cri(5_000, 'n0 i1 step 5'));
      await launch('klog', 1, 0, cri(60 * MIN, 'n1 step 1 (an hour ago)') + cri(10_000, 'n1 step 9'));
    }, 180_000);

    it('prints every pod under a header naming its node, incarnation and pod, node by node, the agent\'s lines left out', async () => {
      const { code, stdout, stderr } = await rover(['klog']);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(withoutLaunchTimes(stdout)).toBe([
        header('klog', 0, 0), '[node 0] n0 i0 step 1', '[node 0] n0 i0 step 2', '[node 0] n0 i0 step 3',
        header('klog', 0, 1), '[node 0] n0 i1 step 4', '[node 0] n0 i1 step 5',
        header('klog', 1, 0), '[node 1] n1 step 1 (an hour ago)', '[node 1] n1 step 9',
        '',
      ].join('\n'));
      // The launch time in each header is the pod's start.
      const launched = [...stdout.matchAll(/ · launched (\S+) · /g)].map((m) => Date.parse(m[1]!));
      expect(launched.every((t) => Math.abs(t - Date.now()) < 10 * MIN)).toBe(true);
      // --agent: the agent's JSON lines instead; the workflow id names the job too.
      const agent = await logsOf('job-klog', { node: 0, agent: true });
      expect(withoutLaunchTimes(agent.stdout)).toBe(`${header('klog', 0, 1)}\n${joined}\n`);
    });

    it('--tail N keeps the last N lines of each node across its incarnations', async () => {
      const { stdout } = await logsOf('klog', { tail: '3' });
      expect(withoutLaunchTimes(stdout)).toBe([
        header('klog', 0, 0), '[node 0] n0 i0 step 3',
        header('klog', 0, 1), '[node 0] n0 i1 step 4', '[node 0] n0 i1 step 5',
        header('klog', 1, 0), '[node 1] n1 step 1 (an hour ago)', '[node 1] n1 step 9',
        '',
      ].join('\n'));
      expect(withoutLaunchTimes((await logsOf('klog', { tail: '1' })).stdout)).toBe(
        [header('klog', 0, 1), '[node 0] n0 i1 step 5', header('klog', 1, 0), '[node 1] n1 step 9', ''].join('\n'),
      );
    });

    it('--since keeps the lines the kubelet stamped since then; an incarnation with none is left out', async () => {
      const { stdout } = await logsOf('klog', { since: '10m' });
      expect(withoutLaunchTimes(stdout)).toBe(
        [header('klog', 0, 1), '[node 0] n0 i1 step 4', '[node 0] n0 i1 step 5', header('klog', 1, 0), '[node 1] n1 step 9', ''].join('\n'),
      );
      const at = new Date(Date.now() - 2 * MIN).toISOString();
      expect(withoutLaunchTimes((await logsOf('klog', { since: at })).stdout)).toBe(
        [header('klog', 0, 1), '[node 0] n0 i1 step 5', header('klog', 1, 0), '[node 1] n1 step 9', ''].join('\n'),
      );
    });

    it('--node N prints that node only, without the [node N] tags', async () => {
      const { stdout } = await logsOf('klog', { node: 1 });
      expect(withoutLaunchTimes(stdout)).toBe([header('klog', 1, 0), 'n1 step 1 (an hour ago)', 'n1 step 9', ''].join('\n'));
      expect(withoutLaunchTimes((await logsOf('klog', { node: 1, since: '30m' })).stdout)).toBe([header('klog', 1, 0), 'n1 step 9', ''].join('\n'));
      await expect(logsOf('klog', { node: 7 })).rejects.toThrow(/^no pods of node 7 of job klog in namespace default \(label rover\.dev\/job=klog\): Kubernetes keeps a pod's log only while the pod exists/);
    });

    it('--follow prints the selection, then what the pods write (across an apiserver restart) and the pods of later incarnations, until Ctrl-C', async () => {
      const cli = spawn(process.execPath, [path.join(repoRoot, 'bin/rover.js'), 'logs', 'klog', '--node', '0', '--tail', '1', '--follow'], { env: env() });
      let stdout = '';
      let stderr = '';
      cli.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      cli.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
      try {
        await waitUntil(() => stdout.includes('n0 i1 step 5\n'), 'the selection (--tail 1)', 60_000, 100);
        const file = path.join(home, 'pod-logs', `default-${podName('klog', 0, 1)}.log`);
        appendFileSync(file, cri(0, 'n0 i1 step 6'));
        await waitUntil(() => stdout.includes('n0 i1 step 6\n'), 'a line written while following', 60_000, 100);
        // The apiserver restarts under the stream: it resumes after the last line it printed.
        await cluster.restartApiserver();
        appendFileSync(file, cri(0, 'n0 i1 step 6b'));
        await waitUntil(() => stdout.includes('n0 i1 step 6b\n'), 'a line written after an apiserver restart', 60_000, 100);
        // The node is relaunched: its new pod's log follows under its own header.
        await failPod(cluster.core, 'default', podName('klog', 0, 1), 137, 'Error');
        await launch('klog', 0, 2, cri(1_000, 'n0 i2 step 7'));
        await waitUntil(() => stdout.includes('n0 i2 step 7\n'), 'the new incarnation\'s log', 60_000, 100);
      } finally {
        cli.kill('SIGINT');
      }
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
      expect(withoutLaunchTimes(stdout)).toBe([header('klog', 0, 1), 'n0 i1 step 5', 'n0 i1 step 6', 'n0 i1 step 6b', header('klog', 0, 2), 'n0 i2 step 7', ''].join('\n'));
    });
  });

  it('--run current shows this run\'s pods and says when earlier runs\' pods are left; --run all shows those too', async () => {
    // Run 1 of "kruns" started an hour ago and left its node 0 pod behind; run 2 began now.
    const earlier = await openStore(storeUrl, { now: () => Date.now() - 60 * MIN });
    try {
      await createJob('kruns', 'default', 'RUNNING', earlier);
    } finally {
      await earlier.close();
    }
    const run1 = runStart.get('kruns');
    await launch('kruns', 0, 0, cri(50 * MIN, 'run 1 node 0'));
    const spec = kubeJobSpec('kruns');
    await store.jobs.replace({ id: 'kruns', workflowId: 'job-kruns', user: 'tester', group: '', backend: 'kubernetes', spec, token: 't2', phase: 'RUNNING' });
    runStart.set('kruns', new Date((await store.jobs.get('kruns'))!.createdAt).toISOString());
    expect(runStart.get('kruns')).not.toBe(run1);
    await launch('kruns', 1, 0, cri(1_000, 'run 2 node 1'));

    const current = await logsOf('kruns');
    expect(withoutLaunchTimes(current.stdout)).toBe([header('kruns', 1, 0), '[node 1] run 2 node 1', ''].join('\n'));
    expect(current.stderr).toBe('rover logs: 1 pod of earlier runs of kruns still exist; --run all shows them\n');
    const all = await logsOf('kruns', { run: 'all' });
    expect(withoutLaunchTimes(all.stdout)).toBe([header('kruns', 0, 0, run1), '[node 0] run 1 node 0', header('kruns', 1, 0), '[node 1] run 2 node 1', ''].join('\n'));
    expect(all.stderr).toMatch(/Kubernetes keeps a pod's log only while the pod exists, and Rover deletes a run's pods when the run ends: earlier runs show only where their pods are left \(1 pod of earlier runs here\)/);
  });

  it('reads logs with the rover-worker role of deploy/ (pods/log get), in the job\'s namespace', async () => {
    const objects = KubernetesObjectApi.makeApiClient(cluster.kc);
    await objects.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'rover' } }).catch(() => undefined);
    const rbac = parseAllDocuments(readFileSync(path.join(repoRoot, 'deploy/kubernetes/rbac-worker.yaml'), 'utf8')).map((d) => d.toJS() as KubernetesObject);
    for (const doc of rbac) await objects.patch(doc, undefined, undefined, 'rover-test', true, PatchStrategy.ServerSideApply);
    await createJob('kworker', 'rover');
    await launch('kworker', 0, 0, cri(1_000, 'hello from the rover namespace'), 'rover');
    // The authorizer learns the new binding through its informers.
    const result = await waitUntil(
      () => logsOf('kworker', {}, { ROVER_KUBECONFIG: cluster.workerKubeconfig }).catch(() => undefined),
      'rover logs under the worker role', 60_000, 200,
    );
    expect(withoutLaunchTimes(result.stdout)).toBe([header('kworker', 0, 0), '[node 0] hello from the rover namespace', ''].join('\n'));
  });

  it('says which incarnations are pending rather than printing nothing', async () => {
    // No node fits its nodeSelector: the pod stays Pending (Unschedulable), without a log.
    await createJob('kpending');
    const spec = kubeJobSpec('kpending', { nodeSelector: { type: 'gpu-a100' } });
    await launchNode(store, backend, { jobId: 'kpending', nodeId: 0, incarnation: 0, spec, resources: spec.spec.resources, agentEnv: {} });
    await waitUntil(
      async () => (await cluster.core.readNamespacedPod({ name: podName('kpending', 0, 0), namespace: 'default' })).status?.conditions?.some((c) => c.reason === 'Unschedulable'),
      'the pod marked Unschedulable', 30_000, 100,
    );
    expect(await logsOf('kpending')).toEqual({ stdout: '', stderr: 'rover logs: node 0 incarnation 0 (pod rover-kpending-0-0) is pending: no log yet\n' });
  });

  it('fails in one clear line: no pods left, RBAC refusal, apiserver unreachable, no cluster configured', async () => {
    // A finished job: its pods, and their logs, are gone.
    await createJob('kdone', 'default', 'SUCCEEDED');
    await expect(logsOf('kdone')).rejects.toThrow(
      /^no pods of job kdone in namespace default \(label rover\.dev\/job=kdone\): Kubernetes keeps a pod's log only while the pod exists, and Rover deletes a run's pods when the run ends \(the job is SUCCEEDED\)$/,
    );
    // The worker's service account has no role in namespace default.
    await expect(logsOf('klog', {}, { ROVER_KUBECONFIG: cluster.workerKubeconfig })).rejects.toThrow(
      /^the Kubernetes API at https:\/\/127\.0\.0\.1:\d+ refused to list pods in namespace default \(403 Forbidden: pods is forbidden: User "system:serviceaccount:rover:rover-worker" cannot list resource "pods" .*\); rover logs needs get and list on pods and get on pods\/log/,
    );
    await expect(logsOf('klog', {}, { ROVER_KUBECONFIG: undefined })).rejects.toThrow(
      /^job klog runs on the kubernetes backend, and no cluster is configured here: set ROVER_KUBECONFIG to a kubeconfig file \(or ROVER_KUBERNETES_IN_CLUSTER=true inside a pod\)$/,
    );
    // Nothing listens where the kubeconfig points: the command exits 1 with one line, no stack trace.
    const port = await freePort();
    const downConfig = path.join(home, 'down.kubeconfig');
    writeFileSync(downConfig, readFileSync(cluster.kubeconfig, 'utf8').replace(/https:\/\/127\.0\.0\.1:\d+/, `https://127.0.0.1:${port}`));
    const down = await rover(['klog'], { ROVER_KUBECONFIG: downConfig });
    expect(down.code).toBe(1);
    expect(down.stdout).toBe('');
    expect(down.stderr).toMatch(new RegExp(`^rover: cannot reach the Kubernetes API server at https://127\\.0\\.0\\.1:${port} to list pods in namespace default: [^\\n]*ECONNREFUSED[^\\n]*\\n$`));
  });
});
