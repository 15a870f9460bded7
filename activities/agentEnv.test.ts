// What a launched agent is given, on every backend: the job's identity, its token (from the
// workflow, the store has only the digest) and the agent's settings, never the worker's secrets.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { kubernetesOptions, nodePod } from '../cluster/kubernetes/manifests.ts';
import { LOCAL_STACK_VAR } from '../cluster/local/processes.ts';
import { nodeSubmission } from '../cluster/ray/submission.ts';
import { captureBackend } from '../cluster/testing.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { localAgentBaseEnv, TRAINER_ROVER_PASSTHROUGH } from '../common/processEnv.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { deriveJobToken, nodeToken, tokenDigest } from '../common/tokens.ts';
import { describeEachStore } from '../store/testing.ts';
import { createJobActivities } from './job.ts';

/** Rover's agent settings (docs/operations.md, "What a training process can see"), and nothing else. */
const AGENT_SETTINGS = [
  'ROVER_API_URL', 'ROVER_JOB', 'ROVER_NODE', 'ROVER_INCARNATION', 'ROVER_TOKEN', 'ROVER_NPROC_PER_NODE', 'ROVER_ENTRYPOINT',
  'ROVER_MAX_PROCESS_RESTARTS', 'ROVER_HEARTBEAT_INTERVAL_MS', 'ROVER_SHUTDOWN_GRACE_MS', 'ROVER_CHECKPOINT_DIR',
  'ROVER_CHECKPOINT_FLASH', 'ROVER_LOG_LEVEL', 'ROVER_START_JITTER_MS',
].sort();

const SECRETS = {
  ROVER_STORE_URL: 'mysql://rover:hunter2-db-password@db.internal:3306/rover',
  ROVER_TEMPORAL_ADDRESS: 'temporal.internal:7233',
  ROVER_OPERATOR_TOKEN: 'operator-secret-never-in-a-job',
};

const homes: string[] = [];
afterEach(() => {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});

function expectNoSecret(env: Record<string, unknown>): void {
  const text = JSON.stringify(env);
  for (const value of [...Object.values(SECRETS), 'hunter2-db-password', 'temporal.internal']) expect(text).not.toContain(value);
}

describeEachStore('the environment a launch gives an agent', (h) => {
  it('holds its node token (derived from the run key), the agent settings, and nothing of the worker', async () => {
    const store = await h.open();
    const home = mkdtempSync(path.join(os.tmpdir(), 'rover-agentenv-'));
    homes.push(home);
    const { backend: capture, launches } = captureBackend();
    const config = loadConfig({ ...SECRETS, ROVER_HOME: home, ROVER_API_URL: 'http://api.internal:8470' });
    const acts = createJobActivities({ store, backends: [capture], config, logger: createLogger('test', 'silent') });
    const input = {
      metadata: { name: 'envjob', user: 'ada' },
      spec: { nodes: { min: 1, max: 1, initial: 1 }, entrypoint: { command: 'python3', args: ['train.py'], env: { NCCL_DEBUG: 'INFO' } } },
    };
    const parsed = parseJobSpec(input);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    // The run key is what the workflow's history holds; the token is derived from it with the
    // worker's signing key, so reading the history yields no usable token.
    const runKey = 'e1d2c3b4-a596-4877-8899-aabbccddeeff';
    const token = deriveJobToken(SECRETS.ROVER_OPERATOR_TOKEN, 'envjob', runKey);
    expect(token).not.toContain(runKey);
    await acts.prepareJob({ jobId: 'envjob', workflowId: 'job-envjob', spec: parsed.spec, runKey, targetNodes: 1 });
    expect((await store.jobs.get('envjob'))!.tokenDigest).toBe(tokenDigest(token));
    expect((await store.jobs.get('envjob'))!.tokenDigest).not.toBe(tokenDigest(runKey));

    await acts.launchNodes({ jobId: 'envjob', runKey, nodes: [{ id: 0, incarnation: 0 }] });
    const env = launches[0]!.agentEnv;
    expect(Object.keys(env).sort()).toEqual(AGENT_SETTINGS);
    // The agent gets its node incarnation's token, not the job's.
    const agentToken = nodeToken(SECRETS.ROVER_OPERATOR_TOKEN, tokenDigest(token), { node: 0, incarnation: 0 });
    expect(agentToken).not.toContain(token);
    expect(env).toMatchObject({ ROVER_TOKEN: agentToken, ROVER_JOB: 'envjob', ROVER_NODE: '0', ROVER_INCARNATION: '0', ROVER_API_URL: 'http://api.internal:8470' });
    // A node launched alone registers at once; three launched together spread over 3 ms.
    expect(env.ROVER_START_JITTER_MS).toBe('1');
    await acts.launchNodes({ jobId: 'envjob', runKey, nodes: [1, 2, 3].map((id) => ({ id, incarnation: 0 })) });
    expect(launches.slice(1).map((l) => l.agentEnv.ROVER_START_JITTER_MS)).toEqual(['3', '3', '3']);
    expectNoSecret(env);

    // Kubernetes: the pod's environment is the launch's plus the node's address and pod name.
    const k8sSpec = parseJobSpec({ ...input, spec: { ...input.spec, backend: 'kubernetes', kubernetes: { image: 'rover:1' } } });
    if (!k8sSpec.ok) throw new Error(JSON.stringify(k8sSpec.errors));
    const pod = nodePod({ ...launches[0]!, spec: k8sSpec.spec }, kubernetesOptions(k8sSpec.spec), { apiVersion: 'v1', kind: 'ConfigMap', name: 'o', uid: 'u' }, {
      agentCommand: ['agent'], terminationGraceSeconds: 10,
    });
    const podEnv = pod.spec!.containers[0]!.env!;
    expect(podEnv.map((e) => e.name).sort()).toEqual([...AGENT_SETTINGS, 'ROVER_HOST', 'ROVER_POD_NAME'].sort());
    expectNoSecret(Object.fromEntries(podEnv.map((e) => [e.name, e.value])));

    // Ray: the job's env_vars are the launch's plus Ray's stop wait and the spec's runtime env.
    const submission = nodeSubmission({
      jobId: 'envjob', runTag: 'r1', nodeId: 0, incarnation: 0, resources: launches[0]!.resources,
      ray: { address: 'http://127.0.0.1:8265', runtimeEnv: { env_vars: { HF_HOME: '/data/hf' } }, resources: {} },
      agentEnv: env, nodeBinary: '/usr/bin/node', agent: { mode: 'path', bundlePath: '/shared/agent.mjs' },
    });
    const rayEnv = submission.runtime_env.env_vars as Record<string, string>;
    expect(Object.keys(rayEnv).sort()).toEqual([...AGENT_SETTINGS, 'HF_HOME', 'RAY_JOB_STOP_WAIT_TIME_S'].sort());
    expectNoSecret(rayEnv);
  });
});

it('gives a local agent only the host entries and test hooks of the worker\'s environment', () => {
  const worker = {
    ...SECRETS, PATH: '/usr/bin', HOME: '/home/ada', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TMPDIR: '/scratch', MYSQL_PWD: 'x',
    ROVER_API_PORT: '8470', CUDA_VISIBLE_DEVICES: '0', NCCL_DEBUG: 'INFO', PYTHONPATH: '/worker/lib', AWS_SECRET_ACCESS_KEY: 'x',
    ROVER_TEST_NODE_CHECK_NODES: '1:fail',
  };
  expect(localAgentBaseEnv(worker)).toEqual({
    PATH: '/usr/bin', HOME: '/home/ada', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TMPDIR: '/scratch', ROVER_TEST_NODE_CHECK_NODES: '1:fail',
  });
  // The local backend's home reaches trainers: it finds a node's processes by it.
  expect(TRAINER_ROVER_PASSTHROUGH).toContain(LOCAL_STACK_VAR);
});
