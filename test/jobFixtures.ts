// Job specs and process helpers for the end-to-end tests.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export interface JobOptions {
  nodes?: number;
  max?: number;
  nproc?: number;
  steps?: number;
  extraArgs?: string[];
  maxProcessRestarts?: number;
  maxNodeRelaunches?: number;
}

/** A job running examples/trainer.py with test-sized timings. */
export function jobSpec(home: string, name: string, o: JobOptions = {}): JobSpec {
  const parsed = parseJobSpec(jobSpecInput(home, name, o));
  if (!parsed.ok) throw new Error(`bad test spec: ${JSON.stringify(parsed.errors)}`);
  return parsed.spec;
}

/** The spec as a user writes it (durations with units), e.g. for a file `rover submit` reads. */
export function jobSpecInput(home: string, name: string, o: JobOptions = {}) {
  const nodes = o.nodes ?? 2;
  return {
    metadata: { name, user: 'tester' },
    spec: {
      nodes: { min: 1, max: o.max ?? nodes, initial: nodes },
      nprocPerNode: o.nproc ?? 2,
      entrypoint: {
        command: 'python3',
        args: ['examples/trainer.py', '--steps', String(o.steps ?? 40), '--step-time', '0.05', '--connect-timeout', '20', ...(o.extraArgs ?? [])],
        workdir: repoRoot,
      },
      faultTolerance: {
        maxProcessRestarts: o.maxProcessRestarts ?? 3,
        maxNodeRelaunches: o.maxNodeRelaunches ?? 3,
        heartbeatInterval: '200ms',
        heartbeatTimeout: '10s',
      },
      rendezvous: { lastCallTimeout: '2s', joinTimeout: '60s' },
      checkpoint: { dir: path.join(home, 'checkpoints', name) },
    },
  };
}

/** Pids of the direct children of a process. */
export async function childPids(pid: number): Promise<number[]> {
  const { stdout } = await promisify(execFile)('ps', ['-o', 'pid=', '--ppid', String(pid)]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').map((l) => Number(l.trim())).filter((n) => n > 0);
}

/**
 * Pids of an agent's training processes, in start order: its children except the esbuild service
 * that tsx starts beside an agent run from the TypeScript sources (it comes and goes with tsx's
 * transform cache, so "the first child" is not always a trainer).
 */
export async function trainerPids(agentPid: number): Promise<number[]> {
  const cmdline = (pid: number) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  const children = await childPids(agentPid);
  const lines = await Promise.all(children.map(cmdline));
  return children.filter((_, i) => lines[i] !== '' && !lines[i]!.includes('esbuild'));
}
