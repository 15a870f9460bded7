import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { logTail, nodeSubmission, shellQuote, submissionId, type NodeSubmissionInput } from './submission.ts';
import { createZip } from './zip.ts';

const input = (over: Partial<NodeSubmissionInput> = {}): NodeSubmissionInput => ({
  jobId: 'mnist',
  runTag: 'm3x9a2b',
  nodeId: 1,
  incarnation: 2,
  resources: { cpu: 0.5, memory: 512 * 2 ** 20, gpu: 1 },
  ray: { address: 'http://127.0.0.1:8265', runtimeEnv: { env_vars: { HF_HOME: '/data/hf', ROVER_NODE: 'ignored' }, pip: ['numpy'] }, resources: { TPU: 1 } },
  agentEnv: { ROVER_NODE: '1', ROVER_JOB: 'mnist' },
  nodeBinary: '/usr/bin/node',
  agent: { mode: 'path', bundlePath: '/shared/rover agent/rover-agent.mjs' },
  ...over,
});

describe('Ray job submission of a node', () => {
  it('names the submission by job run, node and incarnation, the same on every retry', () => {
    expect(submissionId('mnist', 'm3x9a2b', 1, 2)).toBe('rover-mnist-1-2-m3x9a2b');
    expect(nodeSubmission(input()).submission_id).toBe(nodeSubmission(input()).submission_id);
    expect(nodeSubmission(input({ incarnation: 3 })).submission_id).not.toBe(nodeSubmission(input()).submission_id);
  });

  it('maps node resources and custom Ray resources onto the entrypoint', () => {
    const s = nodeSubmission(input());
    expect(s).toMatchObject({ entrypoint_num_cpus: 0.5, entrypoint_num_gpus: 1, entrypoint_memory: 512 * 2 ** 20, entrypoint_resources: { TPU: 1 } });
    expect(s.metadata).toEqual({ rover_job: 'mnist', rover_run: 'm3x9a2b', rover_node: '1', rover_incarnation: '2' });
  });

  it("merges the agent's environment over the user's runtime_env, keeping the rest of it", () => {
    const env = nodeSubmission(input()).runtime_env;
    expect(env.env_vars).toEqual({ RAY_JOB_STOP_WAIT_TIME_S: '15', HF_HOME: '/data/hf', ROVER_NODE: '1', ROVER_JOB: 'mnist' });
    expect(env.pip).toEqual(['numpy']);
    expect(env.working_dir).toBeUndefined();
  });

  it("lets Ray wait out the agent's shutdown grace before it SIGKILLs a stopped node", () => {
    const env = nodeSubmission(input({ agentEnv: { ROVER_SHUTDOWN_GRACE_MS: '2000' } })).runtime_env.env_vars;
    expect(env).toMatchObject({ RAY_JOB_STOP_WAIT_TIME_S: '7' });
  });

  it('runs the bundle by path, quoted for the shell, with exec so Ray signals the agent itself', () => {
    expect(nodeSubmission(input()).entrypoint).toBe("exec /usr/bin/node '/shared/rover agent/rover-agent.mjs'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  it("uploads: the package becomes the working_dir, and a user's working_dir is refused by name", () => {
    const agent = { mode: 'upload' as const, packageUri: 'gcs://_ray_pkg_abc.zip', fileName: 'rover-agent.mjs' };
    const s = nodeSubmission(input({ agent }));
    expect(s.runtime_env.working_dir).toBe('gcs://_ray_pkg_abc.zip');
    expect(s.entrypoint).toBe('exec /usr/bin/node rover-agent.mjs');
    const ray = { ...input().ray, runtimeEnv: { working_dir: '.' } };
    expect(() => nodeSubmission(input({ agent, ray }))).toThrow(/spec\.ray\.runtimeEnv\.working_dir/);
  });

  it('keeps the last lines of a log for a failure reason', () => {
    expect(logTail('a\nb\nc\nd\n', 2)).toBe('c\nd');
  });
});

describe('createZip', () => {
  it('writes a zip that Python reads back byte for byte', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rover-zip-'));
    const data = Buffer.from('console.log("hello");\n'.repeat(1000));
    writeFileSync(path.join(dir, 'a.zip'), createZip([{ name: 'rover-agent.mjs', data }, { name: 'empty.txt', data: Buffer.alloc(0) }]));
    const script = 'import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nsys.stdout.write(",".join(z.namelist()))\nopen(sys.argv[2], "wb").write(z.read("rover-agent.mjs"))';
    const names = execFileSync('python3', ['-c', script, path.join(dir, 'a.zip'), path.join(dir, 'out')], { encoding: 'utf8' });
    expect(names).toBe('rover-agent.mjs,empty.txt');
    expect(readFileSync(path.join(dir, 'out')).equals(data)).toBe(true);
  });
});
