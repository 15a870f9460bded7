import { describe, expect, it } from 'vitest';
import { parsePythonCommand } from './pythonCommand.ts';

describe('parsePythonCommand', () => {
  it.each([
    ['python3', ['train.py', '--lr', '0.1'], { options: [], target: { kind: 'script', path: 'train.py' }, rest: ['--lr', '0.1'] }],
    ['/opt/venv/bin/python', ['-u', 'examples/torch_ddp.py'], { options: ['-u'], target: { kind: 'script', path: 'examples/torch_ddp.py' }, rest: [] }],
    ['python3.11', ['-X', 'dev', '-Wignore', '-m', 'pkg.train', '-m', 'x'], { options: ['-X', 'dev', '-W', 'ignore'], target: { kind: 'module', name: 'pkg.train' }, rest: ['-m', 'x'] }],
    ['python', ['-uBm', 'pkg.train'], { options: ['-uB'], target: { kind: 'module', name: 'pkg.train' }, rest: [] }],
    ['python', ['-um', 'pkg'], { options: ['-u'], target: { kind: 'module', name: 'pkg' }, rest: [] }],
    ['python', ['-Xfrozen_modules=off', '--', '-odd.py', 'a'], { options: ['-X', 'frozen_modules=off'], target: { kind: 'script', path: '-odd.py' }, rest: ['a'] }],
    ['python', ['--check-hash-based-pycs', 'never', 'train.py'], { options: ['--check-hash-based-pycs', 'never'], target: { kind: 'script', path: 'train.py' }, rest: [] }],
  ] as const)('%s %j', (command, args, expected) => {
    expect(parsePythonCommand(command, args)).toEqual(expected);
  });

  it.each([
    ['sh', ['-c', 'python3 train.py']],
    ['torchrun', ['train.py']],
    ['python3', ['-c', 'print(1)']],
    ['python3', ['-']],
    ['python3', ['-i', 'train.py']],
    ['python3', ['-u']],
    ['python3', ['-m']],
    ['python3', ['--version']],
    ['pythonic', ['train.py']],
  ] as const)('%s %j is not a Python entrypoint', (command, args) => {
    expect(parsePythonCommand(command, args)).toBeUndefined();
  });
});
