// The environment a training process gets: what torchrun would set, plus ROVER_* for the client.
import { trainerBaseEnv } from '../common/processEnv.ts';
import type { AgentSettings } from './settings.ts';

/**
 * The variables trainerEnv sets that depend on the round (the placement). A warm standby
 * (agent/standby.ts) starts with every other variable of its trainer and gets these at the go.
 */
export const ROUND_ENV_NAMES: readonly string[] = [
  'RANK', 'WORLD_SIZE', 'GROUP_RANK', 'GROUP_WORLD_SIZE', 'ROLE_RANK', 'ROLE_WORLD_SIZE',
  'MASTER_ADDR', 'MASTER_PORT', 'TORCHELASTIC_RESTART_COUNT', 'ROVER_ROUND',
];

export interface Placement {
  round: number;
  groupRank: number;
  /** Nodes in the round. */
  nodes: number;
  masterAddr: string;
  masterPort: number;
}

/**
 * Layers, later wins: the allow-listed part of the agent's environment (common/processEnv.ts:
 * host entries such as PATH and HOME, the checkpoint directory, the flash saver's URL; never the
 * agent's own settings or anything else it was started with), PYTHONUNBUFFERED=1, the
 * entrypoint's env, then the rank variables (a job spec cannot override RANK or MASTER_ADDR by
 * accident) and the job's identity and token for the client.
 *
 * TORCHELASTIC_RESTART_COUNT is torchrun's "worker group restarts so far": here the rounds the job
 * closed before this one (round − 1), so every rank of a round sees the same value, including
 * those of a node relaunched mid-job, whatever made the group restart (failure, relaunch, scale).
 */
export function trainerEnv(
  settings: AgentSettings,
  placement: Placement,
  localRank: number,
  baseEnv: NodeJS.ProcessEnv,
): NodeJS.ProcessEnv {
  const nproc = settings.nprocPerNode;
  const worldSize = placement.nodes * nproc;
  const rank = placement.groupRank * nproc + localRank;
  return {
    ...trainerBaseEnv(baseEnv),
    // Python block-buffers piped stdout, which would delay ROVER_STEP lines; the entrypoint may override.
    PYTHONUNBUFFERED: '1',
    ...settings.entrypoint.env,
    RANK: String(rank),
    LOCAL_RANK: String(localRank),
    WORLD_SIZE: String(worldSize),
    LOCAL_WORLD_SIZE: String(nproc),
    GROUP_RANK: String(placement.groupRank),
    GROUP_WORLD_SIZE: String(placement.nodes),
    ROLE_NAME: 'default',
    ROLE_RANK: String(rank),
    ROLE_WORLD_SIZE: String(worldSize),
    MASTER_ADDR: placement.masterAddr,
    MASTER_PORT: String(placement.masterPort),
    TORCHELASTIC_RESTART_COUNT: String(placement.round - 1),
    TORCHELASTIC_MAX_RESTARTS: String(settings.maxProcessRestarts),
    TORCHELASTIC_RUN_ID: settings.job,
    ROVER_API_URL: settings.apiUrls.join(','),
    ROVER_JOB: settings.job,
    ROVER_NODE: String(settings.node),
    ROVER_INCARNATION: String(settings.incarnation),
    ROVER_TOKEN: settings.token,
    ROVER_ROUND: String(placement.round),
  };
}

/**
 * What a warm standby of `localRank` starts with: the trainer's environment without the round's
 * variables (ROUND_ENV_NAMES). So the host entries, PYTHONUNBUFFERED, the spec's env (with
 * OMP_NUM_THREADS, CUDA_VISIBLE_DEVICES, …), LOCAL_RANK, LOCAL_WORLD_SIZE, ROLE_NAME,
 * TORCHELASTIC_MAX_RESTARTS, TORCHELASTIC_RUN_ID and the node's identity and token for the client
 * are valid while the preload modules import.
 */
export function standbyEnv(settings: AgentSettings, localRank: number, baseEnv: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const placeholder: Placement = { round: 1, groupRank: 0, nodes: 1, masterAddr: '', masterPort: 0 };
  const env = trainerEnv(settings, placeholder, localRank, baseEnv);
  for (const name of ROUND_ENV_NAMES) delete env[name];
  return env;
}
