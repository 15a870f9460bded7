// Checkpoint paths by their words, for folders this host cannot see (Kubernetes, remote storage).
// The symlink cases run against real files in api/ledger.test.ts.
import { describe, expect, it } from 'vitest';
import { checkCheckpointPath } from './checkpointPaths.ts';

describe('checkCheckpointPath', () => {
  it.each([
    // absolute folder: absolute files below it
    ['/nonexistent/ckpt', '/nonexistent/ckpt/s1-r0.bin', true],
    ['/nonexistent/ckpt', '/nonexistent/ckpt/./sub/s1.bin', true],
    ['/nonexistent/ckpt', '/nonexistent/ckpt', false],
    ['/nonexistent/ckpt', '/nonexistent/ckpt-other/s1.bin', false],
    ['/nonexistent/ckpt', 'ckpt/s1.bin', false],
    ['/nonexistent/ckpt', '/nonexistent/ckpt/../../etc/passwd', false],
    // relative folder (inside the container's working directory, unknown to the API)
    ['.rover/checkpoints/job', '.rover/checkpoints/job/s1.bin', true],
    ['.rover/checkpoints/job', '/workspace/.rover/checkpoints/job/s1.bin', true],
    ['.rover/checkpoints/job', '/etc/passwd', false],
    ['.rover/checkpoints/job', '.rover/checkpoints/other/s1.bin', false],
    ['.rover/checkpoints/job', '.rover/checkpoints/job/../../../x', false],
    ['.rover/checkpoints/job', 'a\0b', false],
  ])('folder %j, file %j: accepted %s', async (dir, file, ok) => {
    expect((await checkCheckpointPath(dir, file)).ok).toBe(ok);
  });
});
