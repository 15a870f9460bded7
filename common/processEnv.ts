// What a job's processes may see of the environment they are started from. Agents and trainers
// run user code; the worker that starts local agents holds the store URL (with MySQL, its
// password), the Temporal address and the operator token. So nothing is inherited wholesale:
// an agent gets the host entries below plus what Rover sets for it (activities/job.ts agentEnv),
// and a trainer gets the same host entries from its agent plus what agent/torchrunEnv.ts sets.
// Job-specific settings (CUDA_VISIBLE_DEVICES, NCCL_*, GLOO_*, OMP_NUM_THREADS, PYTHONPATH,
// proxies, …) belong in the spec's entrypoint.env: explicit, and the same on every backend.

/**
 * Host entries passed on, each for a reason:
 * - PATH: finding python3, node, prlimit, py-spy.
 * - HOME: ~/.local site-packages of `pip install --user`, ~/.cache (model and dataset caches).
 * - USER, LOGNAME: getpass.getuser(), which PyTorch and others use to name per-user caches.
 * - LANG, LANGUAGE, LC_*: the locale (text encoding of files and logs).
 * - TZ: log timestamps in the host's zone.
 * - TMPDIR: the node's scratch space for temporary files.
 * - LD_LIBRARY_PATH: where this host keeps shared libraries (a CUDA toolkit or driver outside
 *   the wheels); machine layout a spec cannot know per host, and no secret.
 */
export const HOST_ENV_NAMES: readonly string[] = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'LD_LIBRARY_PATH'];
export const HOST_ENV_PREFIXES: readonly string[] = ['LC_'];

/**
 * Rover variables a trainer gets from its agent's environment besides those trainerEnv sets:
 * where to write checkpoints, the agent's flash-checkpoint saver, and the local backend's stack
 * mark (cluster/local/processes.ts LOCAL_STACK_VAR: it finds a node's processes, orphans
 * included, by that variable).
 */
export const TRAINER_ROVER_PASSTHROUGH: readonly string[] = ['ROVER_CHECKPOINT_DIR', 'ROVER_AGENT_URL', 'ROVER_LOCAL_STACK'];

/**
 * Test hooks a local agent may take from the worker's environment (agent/nodeCheck.ts); they
 * steer the agent only and never reach trainers.
 */
export const AGENT_TEST_HOOKS: readonly string[] = ['ROVER_TEST_NODE_CHECK_NODES'];

function pick(env: NodeJS.ProcessEnv, keep: (name: string) => boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined && keep(name)) out[name] = value;
  return out;
}

function isHostEntry(name: string): boolean {
  return HOST_ENV_NAMES.includes(name) || HOST_ENV_PREFIXES.some((p) => name.startsWith(p));
}

/** The allow-listed host entries of `env`. */
export function hostEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return pick(env, isHostEntry);
}

/** What a local agent takes from the worker's environment: host entries and test hooks, nothing else. */
export function localAgentBaseEnv(workerEnv: NodeJS.ProcessEnv): Record<string, string> {
  return pick(workerEnv, (name) => isHostEntry(name) || AGENT_TEST_HOOKS.includes(name));
}

/** What a trainer takes from its agent's environment, before the spec's env and the rank variables. */
export function trainerBaseEnv(agentEnv: NodeJS.ProcessEnv): Record<string, string> {
  return pick(agentEnv, (name) => isHostEntry(name) || TRAINER_ROVER_PASSTHROUGH.includes(name));
}
