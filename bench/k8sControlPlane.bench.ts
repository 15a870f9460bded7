// Kubernetes backend control-plane figures against the test apiserver + kwok
// (deploy/k8s-test/build.sh must have run):
//   - pods created per second when launching a 200-node job (launchNode, 20 in flight),
//   - pod failure → seen by the backend's pod cache → old pod deleted and replacement created.
// The workflow's own share (watchNodes poll, decision, activity dispatch) is not included.
// Prints figures; asserts nothing about time.
import path from 'node:path';
import { launchNode } from '../activities/nodeLaunch.ts';
import { KubernetesBackend } from '../cluster/kubernetes/kubernetesBackend.ts';
import { podName } from '../cluster/kubernetes/manifests.ts';
import { createLogger } from '../common/logger.ts';
import { openStore } from '../store/index.ts';
import { findKubeBinaries, startKubeCluster } from '../test/infra/kube.ts';
import { failPod, kubeJobSpec } from '../test/infra/kubeJobs.ts';
import { scratchDir } from './scratch.ts';

const NODES = Number(process.env.BENCH_K8S_NODES ?? 200);
const IN_FLIGHT = 20;
const FAILURES = Number(process.env.BENCH_ITERATIONS ?? 3);

if (findKubeBinaries().missing.length > 0) {
  console.log(`skipped: missing ${findKubeBinaries().missing.join(', ')} (run bash deploy/k8s-test/build.sh)`);
  process.exit(0);
}
const cluster = await startKubeCluster();
const store = await openStore(`sqlite:${path.join(scratchDir('k8s'), 'rover.db')}`);
const backend = new KubernetesBackend({ kubeConfig: cluster.kc, store, logger: createLogger('bench', 'warn'), agentCommand: ['rover-agent'], terminationGraceMs: 1000 });
try {
  const spec = kubeJobSpec('bench', { nodes: NODES });
  await store.jobs.create({ id: 'bench', workflowId: 'job-bench', user: 'b', group: '', backend: 'kubernetes', spec, token: 't', phase: 'LAUNCHING' });
  const launch = (nodeId: number, incarnation: number) =>
    launchNode(store, backend, { jobId: 'bench', nodeId, incarnation, spec, resources: spec.spec.resources, agentEnv: { ROVER_JOB: 'bench' } });

  const started = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < NODES) await launch(next++, 0);
  }));
  const seconds = (performance.now() - started) / 1000;
  console.log(`launch: ${NODES} pods created in ${seconds.toFixed(2)} s = ${(NODES / seconds).toFixed(1)} pods/s (${IN_FLIGHT} in flight)`);

  const watch = backend.watchFor('default');
  const until = async (check: () => Promise<boolean> | boolean) => {
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 5))) if (await check()) return;
    throw new Error('timed out');
  };
  await until(() => watch.get('default', podName('bench', NODES - 1, 0))?.status?.phase === 'Running');
  for (let i = 0; i < FAILURES; i++) {
    const node = (await store.nodes.get({ jobId: 'bench', nodeId: i, incarnation: 0 }))!;
    const t0 = performance.now();
    await failPod(cluster.core, 'default', podName('bench', i, 0), 137, 'Error');
    await until(async () => (await backend.findDeadNodes([node])).length > 0);
    const seen = performance.now();
    await backend.deleteNode(node, 1000);
    await launch(i, 1);
    const replaced = performance.now();
    console.log(`failure ${i + 1}: seen after ${(seen - t0).toFixed(0)} ms (kwok chaos + watch), old pod deleted and replacement created after ${(replaced - seen).toFixed(0)} ms more`);
  }
} finally {
  await backend.close();
  await store.close();
  await cluster.stop();
}
