import { describe, expect, it } from 'vitest';
import type { AgentSettings } from './settings.ts';
import { trainerEnv } from './torchrunEnv.ts';

const settings: AgentSettings = {
  apiUrls: ['http://api:8470'],
  job: 'job-llm',
  node: 7,
  incarnation: 1,
  token: 'tok',
  nprocPerNode: 4,
  entrypoint: { command: 'python3', args: [], env: { RANK: '99', NCCL_DEBUG: 'INFO', PYTHONUNBUFFERED: '0' } },
  maxProcessRestarts: 3,
  heartbeatIntervalMs: 5000,
  shutdownGraceMs: 10_000,
  host: 'node-7',
  logLevel: 'info',
  checkpointDir: '/ckpt',
};
const placement = { round: 5, groupRank: 2, nodes: 3, masterAddr: 'node-1', masterPort: 29500 };

describe('trainerEnv', () => {
  it('numbers ranks across nodes like torchrun', () => {
    const env = trainerEnv(settings, placement, 3, { HOME: '/root' });
    expect(env).toMatchObject({
      RANK: '11',
      LOCAL_RANK: '3',
      WORLD_SIZE: '12',
      LOCAL_WORLD_SIZE: '4',
      GROUP_RANK: '2',
      GROUP_WORLD_SIZE: '3',
      ROLE_RANK: '11',
      ROLE_WORLD_SIZE: '12',
      MASTER_ADDR: 'node-1',
      MASTER_PORT: '29500',
      // Round 5: four rounds before it, the same on every rank whatever this node's own history.
      TORCHELASTIC_RESTART_COUNT: '4',
      TORCHELASTIC_MAX_RESTARTS: '3',
      TORCHELASTIC_RUN_ID: 'job-llm',
      ROVER_NODE: '7',
      ROVER_INCARNATION: '1',
      ROVER_ROUND: '5',
    });
  });

  it('passes a trainer only the allow-listed part of the agent\'s environment, never the agent\'s settings', () => {
    const agentEnv = {
      PATH: '/usr/bin', HOME: '/home/ada', LC_ALL: 'C.UTF-8', TMPDIR: '/scratch',
      // What an agent may hold or inherit that no trainer needs (or may see).
      ROVER_STORE_URL: 'mysql://rover:pw@db/rover', ROVER_TEMPORAL_ADDRESS: 'temporal:7233', ROVER_OPERATOR_TOKEN: 'op',
      ROVER_ENTRYPOINT: '{}', ROVER_NPROC_PER_NODE: '4', ROVER_LOG_LEVEL: 'info', ROVER_MEMORY_LIMIT_BYTES: '1', ROVER_HOST: 'node-7',
      KUBERNETES_SERVICE_HOST: '10.0.0.1', RAY_ADDRESS: 'ray:6379', CUDA_VISIBLE_DEVICES: '3', OMP_NUM_THREADS: '64', PYTHONPATH: '/agent',
      // What a trainer gets from its agent.
      ROVER_CHECKPOINT_DIR: '/ckpt', ROVER_AGENT_URL: 'http://127.0.0.1:9', ROVER_LOCAL_STACK: '0123456789abcdef',
    };
    const env = trainerEnv(settings, placement, 0, agentEnv);
    for (const name of ['ROVER_STORE_URL', 'ROVER_TEMPORAL_ADDRESS', 'ROVER_OPERATOR_TOKEN', 'ROVER_ENTRYPOINT', 'ROVER_NPROC_PER_NODE',
      'ROVER_LOG_LEVEL', 'ROVER_MEMORY_LIMIT_BYTES', 'ROVER_HOST', 'KUBERNETES_SERVICE_HOST', 'RAY_ADDRESS', 'CUDA_VISIBLE_DEVICES',
      'OMP_NUM_THREADS', 'PYTHONPATH']) {
      expect(env, name).not.toHaveProperty(name);
    }
    expect(env).toMatchObject({ PATH: '/usr/bin', HOME: '/home/ada', LC_ALL: 'C.UTF-8', TMPDIR: '/scratch', NCCL_DEBUG: 'INFO' });
    expect(Object.keys(env).filter((k) => k.startsWith('ROVER_')).sort()).toEqual([
      'ROVER_AGENT_URL', 'ROVER_API_URL', 'ROVER_CHECKPOINT_DIR', 'ROVER_INCARNATION', 'ROVER_JOB', 'ROVER_LOCAL_STACK', 'ROVER_NODE',
      'ROVER_ROUND', 'ROVER_TOKEN',
    ]);
  });

  it('layers the agent env, then the entrypoint env, then the rank variables', () => {
    const env = trainerEnv(settings, placement, 0, { HOME: '/root', NCCL_DEBUG: 'WARN' });
    expect(env).toMatchObject({ HOME: '/root', NCCL_DEBUG: 'INFO', PYTHONUNBUFFERED: '0', RANK: '8' });
  });
});
