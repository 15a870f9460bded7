// What one Rover node becomes on Ray: a job submission. Pure functions, unit-tested.
import type { ResourcesSpec, RayOptions } from '../../common/spec/index.ts';
import type { RayJobSubmission } from './jobsApi.ts';

/** How the agent reaches the Ray node: a path on a shared filesystem, or a package in the job's working_dir. */
export type AgentShipping = { mode: 'path'; bundlePath: string } | { mode: 'upload'; packageUri: string; fileName: string };

export interface NodeSubmissionInput {
  jobId: string;
  /** Tells runs of the same job name apart (a finished job's name may be reused). */
  runTag: string;
  nodeId: number;
  incarnation: number;
  resources: ResourcesSpec;
  ray: RayOptions;
  agentEnv: Record<string, string>;
  /** The Node.js binary on the Ray nodes. */
  nodeBinary: string;
  agent: AgentShipping;
}

/** Deterministic per (job run, node, incarnation): a retried launch submits the same id. */
export function submissionId(jobId: string, runTag: string, nodeId: number, incarnation: number): string {
  return `rover-${jobId}-${nodeId}-${incarnation}-${runTag}`;
}

/** A short tag for one run of a job, from the time its store row was created. */
export function runTag(jobCreatedAt: number): string {
  return jobCreatedAt.toString(36);
}

/** Quotes a word for /bin/sh, which runs Ray job entrypoints. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function nodeSubmission(input: NodeSubmissionInput): RayJobSubmission {
  const userEnv = input.ray.runtimeEnv;
  const userVars = (userEnv.env_vars ?? {}) as Record<string, string>;
  // Ray SIGKILLs a stopped job after RAY_JOB_STOP_WAIT_TIME_S (default 3 s, read from the job's
  // environment): give the agent its whole grace to stop the trainers first.
  const graceMs = Number(input.agentEnv.ROVER_SHUTDOWN_GRACE_MS ?? 10_000);
  const stopWait = { RAY_JOB_STOP_WAIT_TIME_S: String(Math.ceil(graceMs / 1000) + 5) };
  const runtimeEnv: Record<string, unknown> = { ...userEnv, env_vars: { ...stopWait, ...userVars, ...input.agentEnv } };
  let agentFile: string;
  if (input.agent.mode === 'upload') {
    if (userEnv.working_dir !== undefined) {
      throw new Error(
        'spec.ray.runtimeEnv.working_dir: cannot be set when the agent bundle is uploaded (ROVER_RAY_AGENT_SHIPPING=upload); ship your code with py_modules or a shared filesystem',
      );
    }
    runtimeEnv.working_dir = input.agent.packageUri;
    agentFile = input.agent.fileName;
  } else {
    agentFile = input.agent.bundlePath;
  }
  return {
    // exec: the agent is the process Ray signals when the job is stopped.
    entrypoint: `exec ${shellQuote(input.nodeBinary)} ${shellQuote(agentFile)}`,
    submission_id: submissionId(input.jobId, input.runTag, input.nodeId, input.incarnation),
    runtime_env: runtimeEnv,
    metadata: {
      rover_job: input.jobId,
      rover_run: input.runTag,
      rover_node: String(input.nodeId),
      rover_incarnation: String(input.incarnation),
    },
    entrypoint_num_cpus: input.resources.cpu,
    entrypoint_num_gpus: input.resources.gpu,
    entrypoint_memory: Math.round(input.resources.memory),
    entrypoint_resources: input.ray.resources,
  };
}

/** The last `lines` lines of a log, for a node's failure reason. */
export function logTail(logs: string, lines = 20): string {
  const all = logs.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}
