import { describe, expect, it } from 'vitest';
import type { AgentSettings } from './settings.ts';
import { trainerEnv } from './torchrunEnv.ts';

const settings: AgentSettings = {
  apiUrl: 'http://api:8470',
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

  it('layers the agent env, then the entrypoint env, then the rank variables', () => {
    const env = trainerEnv(settings, placement, 0, { HOME: '/root', NCCL_DEBUG: 'WARN' });
    expect(env).toMatchObject({ HOME: '/root', NCCL_DEBUG: 'INFO', PYTHONUNBUFFERED: '0', RANK: '8' });
  });
});
