import { describe, expect, it } from 'vitest';
import { parseAgentSettings } from './settings.ts';

const valid = {
  ROVER_API_URL: 'http://127.0.0.1:8470',
  ROVER_JOB: 'job-demo',
  ROVER_NODE: '2',
  ROVER_INCARNATION: '1',
  ROVER_TOKEN: 'tok',
  ROVER_NPROC_PER_NODE: '4',
  ROVER_ENTRYPOINT: JSON.stringify({ command: 'python3', args: ['train.py'], env: { A: '1' } }),
  ROVER_MAX_PROCESS_RESTARTS: '3',
  ROVER_HEARTBEAT_INTERVAL_MS: '200',
};

describe('parseAgentSettings', () => {
  it('reads a complete environment and fills defaults', () => {
    expect(parseAgentSettings(valid)).toEqual({
      apiUrls: ['http://127.0.0.1:8470'],
      job: 'job-demo',
      node: 2,
      incarnation: 1,
      token: 'tok',
      nprocPerNode: 4,
      entrypoint: { command: 'python3', args: ['train.py'], env: { A: '1' } },
      maxProcessRestarts: 3,
      heartbeatIntervalMs: 200,
      shutdownGraceMs: 10_000,
      host: '127.0.0.1',
      logLevel: 'info',
      checkpointDir: '.rover/checkpoints/job-demo',
      startJitterMs: 1000,
    });
    expect(parseAgentSettings({ ...valid, ROVER_CHECKPOINT_DIR: '/mnt/ckpt/demo' }).checkpointDir).toBe('/mnt/ckpt/demo');
  });

  it('names every bad variable and says what is wrong', () => {
    const env = { ...valid, ROVER_NODE: 'two', ROVER_NPROC_PER_NODE: '0', ROVER_TOKEN: undefined, ROVER_ENTRYPOINT: '{oops' };
    let message = '';
    try {
      parseAgentSettings(env);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('ROVER_NODE: must be an integer ≥ 0');
    expect(message).toContain('ROVER_NPROC_PER_NODE: must be an integer ≥ 1');
    expect(message).toContain('ROVER_TOKEN: is not set');
    expect(message).toContain('ROVER_ENTRYPOINT: is not valid JSON');
  });

  it('reads several API replicas and names a bad entry', () => {
    expect(parseAgentSettings({ ...valid, ROVER_API_URL: 'http://a:8470/, http://b:8470' }).apiUrls).toEqual(['http://a:8470', 'http://b:8470']);
    expect(() => parseAgentSettings({ ...valid, ROVER_API_URL: 'http://a:8470,b:8470' })).toThrow(/ROVER_API_URL: .*entry 2 of 2 "b:8470" is not an http\(s\) URL/);
  });

  it('points into the entrypoint JSON', () => {
    const env = { ...valid, ROVER_ENTRYPOINT: JSON.stringify({ args: 'train.py' }) };
    expect(() => parseAgentSettings(env)).toThrow(/ROVER_ENTRYPOINT\.command: .*\n\s+ROVER_ENTRYPOINT\.args: /);
  });
});
