// Memory enforcement for local trainers (prlimit RLIMIT_DATA) and recognising the OOM exit.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { looksOutOfMemory } from '../common/oom.ts';
import { withMemoryLimit } from './memoryLimit.ts';

const MiB = 1024 * 1024;
const alloc = (mb: number) => ['-c', `x = bytearray(${mb} * 1024 * 1024); print("ok")`];

describe('withMemoryLimit', () => {
  it('leaves the command alone without a limit', () => {
    expect(withMemoryLimit('python3', ['a.py'], undefined)).toEqual({ command: 'python3', args: ['a.py'], enforced: false });
  });

  it('lets a process use memory below the limit and fails it with MemoryError above', () => {
    const under = withMemoryLimit('python3', alloc(20), 128 * MiB);
    expect(under.enforced).toBe(true);
    const ok = spawnSync(under.command, under.args, { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    const over = withMemoryLimit('python3', alloc(200), 128 * MiB);
    const failed = spawnSync(over.command, over.args, { encoding: 'utf8' });
    expect(failed.status).toBe(1);
    expect(looksOutOfMemory(failed.stderr)).toBe(true);
  });
});

describe('looksOutOfMemory', () => {
  it.each([
    ['Traceback (most recent call last):\n  ...\nMemoryError', true],
    ["terminate called after throwing an instance of 'std::bad_alloc'", true],
    ['OSError: [Errno 12] Cannot allocate memory', true],
    ['torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB', false],
    ['RuntimeError: injected crash at step 3', false],
    ['', false],
  ])('%j → %s', (tail, oom) => expect(looksOutOfMemory(tail)).toBe(oom));
});
