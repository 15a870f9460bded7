// Fixtures for the real-PyTorch tests: the pinned torch venv (deploy/local/torch.sh) and job specs
// running examples/torch_ddp.py / torch_fsdp.py on it, sized for a 2-core machine.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import { repoRoot } from './jobFixtures.ts';

/** The venv's python when deploy/local/torch.sh finished installing it, else undefined. */
export function cachedTorchPython(): string | undefined {
  const version = /^readonly TORCH_VERSION=(\S+)$/m.exec(readFileSync(path.join(repoRoot, 'deploy/local/torch.sh'), 'utf8'))?.[1];
  const venv = process.env.ROVER_TORCH_VENV ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'rover', `torch-${version}`);
  return existsSync(path.join(venv, '.installed')) ? path.join(venv, 'bin', 'python') : undefined;
}

/**
 * The torch venv's python. Missing: a failure in CI (CI=true: .ci/run installs it), else the
 * tests skip and say so loudly (the install is ~5.6 GB, so tests never start it themselves).
 */
export function torchPythonOrSkip(): string | undefined {
  const python = cachedTorchPython();
  if (python) return python;
  const how = 'run `bash deploy/local/torch.sh` (~5.6 GB, several minutes)';
  if (process.env.CI === 'true') throw new Error(`torch is not installed in CI: ${how}`);
  process.stderr.write(`\n*** SKIPPING the real-PyTorch tests: torch is not installed; ${how}\n\n`);
  return undefined;
}

export interface TorchJobOptions {
  script: 'examples/torch_ddp.py' | 'examples/torch_fsdp.py';
  args: string[];
  nodes?: { min: number; max: number; initial: number };
  dataset: { size: number; shardSize: number };
  /** Run the trainer behind test/trainers/torch_wrapper.sh (bash stays its parent), as users' launch scripts do. */
  wrapped?: boolean;
}

/** A user's launch script around the trainer: bash → python, passing the exit status on. */
export const TORCH_WRAPPER = path.join(repoRoot, 'test/trainers/torch_wrapper.sh');

/** 2 local nodes × 2 processes of a torch example (gloo, CPU) with flash checkpoints and a sharded dataset. */
export function torchJobSpec(home: string, name: string, python: string, o: TorchJobOptions): JobSpec {
  const parsed = parseJobSpec({
    metadata: { name, user: 'tester' },
    spec: {
      nodes: o.nodes ?? { min: 2, max: 2, initial: 2 },
      nprocPerNode: 2,
      entrypoint: {
        ...(o.wrapped ? { command: TORCH_WRAPPER, args: [python, o.script, ...o.args] } : { command: python, args: [o.script, ...o.args] }),
        workdir: repoRoot,
        env: { OMP_NUM_THREADS: '1' },
      },
      dataset: { ...o.dataset, epochs: 1, shuffle: true, seed: 7 },
      faultTolerance: { maxProcessRestarts: 3, maxNodeRelaunches: 3, heartbeatInterval: '200ms', heartbeatTimeout: '10s' },
      rendezvous: { lastCallTimeout: '2s', joinTimeout: '90s' },
      checkpoint: { dir: path.join(home, 'checkpoints', name), flash: true },
    },
  });
  if (!parsed.ok) throw new Error(`bad test spec: ${JSON.stringify(parsed.errors)}`);
  return parsed.spec;
}
