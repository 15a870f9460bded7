// A job in a Kubernetes namespace where Rover's worker has no Role: the API server answers 403,
// and the job ends FAILED saying so and what to grant, instead of retrying the launch forever.
// A real kube-apiserver (RBAC on) with kwok; the worker runs as its service account identity.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitJob } from '../cli/jobs.ts';
import { jobOutcome, waitUntil } from './helpers.ts';
import { kubeAvailable, startKubeCluster, type KubeCluster } from './infra/kube.ts';
import { kubeJobSpec } from './infra/kubeJobs.ts';
import { startTestStack, type TestStack } from './stack.ts';

describe.skipIf(!kubeAvailable())('kubernetes permissions', () => {
  let cluster: KubeCluster;
  let stack: TestStack;

  beforeAll(async () => {
    cluster = await startKubeCluster();
    // The namespace exists; no RoleBinding grants the worker anything in it.
    await cluster.core.createNamespace({ body: { metadata: { name: 'team-without-role' } } });
    stack = await startTestStack('kubernetes permissions', { ROVER_KUBECONFIG: cluster.workerKubeconfig, ROVER_SHUTDOWN_GRACE_MS: '1000' });
    await Promise.all([stack.startWorker(), stack.startApi()]);
  }, 240_000);
  afterAll(async () => {
    await stack?.close();
    await cluster?.stop();
  });

  it('fails a job whose namespace forbids the worker (403), naming the namespace and the Role to bind', async () => {
    const handle = await submitJob(stack.client, kubeJobSpec('forbidden', { nodes: 2, namespace: 'team-without-role' }), { taskQueue: stack.config.temporal.taskQueue });
    await waitUntil(async () => (await handle.describe()).status.name !== 'RUNNING', 'the job to end', 60_000, 250);
    const result = await jobOutcome(handle);
    expect(result.phase).toBe('FAILED');
    expect(result.reason).toMatch(/^cannot launch nodes \(permission denied\): the Kubernetes API server forbids Rover's worker in namespace team-without-role \(HTTP 403: /);
    // The server's own words say which identity and which call, and the reason says what to grant.
    expect(result.reason).toMatch(/system:serviceaccount:rover:rover-worker.* cannot create resource/);
    expect(result.reason).toContain('deploy/kubernetes/rbac-worker.yaml');
    expect((await handle.describe()).status.name).toBe('FAILED');
  });
});
