// From a parsed spec to the JobSpec a job runs with: the defaults that depend on where the spec
// came from (user, checkpoint folder, working directory), and the checks that look at this
// machine's files, which only warn: the files may appear before the job starts.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { SpecError } from './errors.ts';
import { rayOptionsSchema, type ParsedJobSpec } from './schema.ts';
import type { JobSpec } from './types.ts';

export interface ResolveOptions {
  /** Source of the default user ($USER). Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Directory a spec file's name is resolved against. Default: process.cwd(). */
  cwd?: string;
  /**
   * Folder that relative local paths in the spec (entrypoint.workdir, checkpoint.dir) resolve
   * against, and the default workdir. Default: the spec file's folder for a file, else `cwd`.
   */
  baseDir?: string;
}

/**
 * Whether the job's processes see this machine's files: on the local backend, and on Ray unless
 * the job ships its code as Ray's working_dir (Rover's default agent shipping already assumes a
 * Ray cluster on this machine or a shared filesystem). Kubernetes paths live in the container.
 */
function seesLocalFiles(spec: Pick<ParsedJobSpec['spec'], 'backend' | 'ray'>): boolean {
  if (spec.backend === 'local') return true;
  return spec.backend === 'ray' && spec.ray?.runtimeEnv?.working_dir === undefined;
}

/**
 * Fills the environment-dependent defaults. Where the processes see this machine's files (local;
 * Ray without a working_dir), relative paths become absolute against `baseDir`: a relative path
 * in a file means relative to that file, wherever `rover submit` runs from, and that folder is
 * the default workdir. Kubernetes paths, and Ray paths inside a working_dir, are left as written.
 */
export function resolveJobSpec(parsed: ParsedJobSpec, opts: ResolveOptions = {}): JobSpec {
  const env = opts.env ?? process.env;
  const base = path.resolve(opts.baseDir ?? opts.cwd ?? process.cwd());
  const { metadata, spec } = parsed;
  const { name, user, ...otherMetadata } = metadata;
  const { dir, ...otherCheckpoint } = spec.checkpoint;
  const local = seesLocalFiles(spec);
  const pin = (p: string) => (local ? path.resolve(base, p) : p);
  const workdir = spec.entrypoint.workdir ?? (local ? base : undefined);
  return {
    apiVersion: parsed.apiVersion,
    kind: parsed.kind,
    metadata: { name, user: user ?? (env.USER || 'anonymous'), ...otherMetadata },
    spec: {
      ...spec,
      entrypoint: { ...spec.entrypoint, ...(workdir !== undefined && { workdir: pin(workdir) }) },
      ...(spec.backend === 'ray' && { ray: spec.ray ?? rayOptionsSchema.parse({}) }),
      checkpoint: { dir: pin(dir ?? path.join('.rover', 'checkpoints', name)), ...otherCheckpoint },
    },
  };
}

const SCRIPT = /\.(?:py|sh)$/;

/**
 * The script the entrypoint runs: the command itself when it is a path to a .py/.sh file, else
 * the first argument ending in .py or .sh (options skipped). None after `-m` or `-c`: a module
 * or inline code is not a file here.
 */
export function entrypointScript(entrypoint: { command: string; args: readonly string[] }): string | undefined {
  if (entrypoint.command.includes('/') && SCRIPT.test(entrypoint.command)) return entrypoint.command;
  for (const arg of entrypoint.args) {
    if (arg === '-m' || arg === '-c') return undefined;
    if (arg.startsWith('-')) continue;
    if (SCRIPT.test(arg)) return arg;
  }
  return undefined;
}

/**
 * Where the processes see this machine's files: warns when the working directory or the
 * entrypoint's script is missing, the usual sign of a relative path meant against another folder.
 */
export async function localFileWarnings(spec: JobSpec): Promise<SpecError[]> {
  const { workdir } = spec.spec.entrypoint;
  if (!seesLocalFiles(spec.spec) || workdir === undefined) return [];
  if (!(await isDirectory(workdir))) {
    return [{ path: 'spec.entrypoint.workdir', message: `${workdir} is not a directory on this machine (relative workdirs resolve against the spec file's folder)` }];
  }
  const script = entrypointScript(spec.spec.entrypoint);
  if (script === undefined || (await exists(path.resolve(workdir, script)))) return [];
  return [
    {
      path: 'spec.entrypoint',
      message: `script ${JSON.stringify(script)} not found in ${workdir}, where the processes start (spec.entrypoint.workdir; default: the spec file's folder)`,
    },
  ];
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function isDirectory(dir: string): Promise<boolean> {
  return stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
