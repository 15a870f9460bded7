// How long `rover` takes to start and finish a command that needs no server: --help, --version
// and validate of the demo spec. bin/rover.js on a fresh build is its freshness check (timed
// here in-process) plus the compiled CLI in dist/ (timed as a process, so a source edited during
// the run does not switch it to the sources); next to them, the same commands from the
// TypeScript sources through tsx (what bin/rover.js runs while the build is stale). Builds
// first. Prints figures; asserts nothing.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../common/repoRoot.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const COMMANDS: [string, string[]][] = [
  ['--help', ['--help']],
  ['--version', ['--version']],
  ['validate', ['validate', 'examples/demo.yaml']],
];

function runMs(args: string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} exited ${result.status}: ${result.stderr.toString()}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function quantiles(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(0);
  return `median ${at(0.5)} ms  min ${sorted[0]!.toFixed(0)} ms  max ${sorted[sorted.length - 1]!.toFixed(0)} ms`;
}

const build = spawnSync(process.execPath, [path.join(repoRoot, 'bin/build.js')], { cwd: repoRoot, stdio: 'inherit' });
if (build.status !== 0) throw new Error('the build failed');
const { buildIsFresh } = (await import(path.join(repoRoot, 'bin/build.js'))) as { buildIsFresh: () => boolean };
const check = Array.from({ length: RUNS }, () => {
  const started = process.hrtime.bigint();
  buildIsFresh();
  return Number(process.hrtime.bigint() - started) / 1e6;
});
const baseline = Array.from({ length: RUNS }, () => runMs(['-e', '0']));
console.log(`${RUNS} runs each. For scale, node -e 0: ${quantiles(baseline)}; bin/rover.js's freshness check: ${quantiles(check)}`);
for (const [name, args] of COMMANDS) {
  const compiled = Array.from({ length: RUNS }, () => runMs([path.join(repoRoot, 'dist/cli/main.js'), ...args]));
  const sources = Array.from({ length: RUNS }, () => runMs(['--import', 'tsx', path.join(repoRoot, 'cli/main.ts'), ...args]));
  console.log(`rover ${name.padEnd(9)}  compiled (dist/): ${quantiles(compiled)}`);
  console.log(`${' '.repeat(15)}  sources via tsx:  ${quantiles(sources)}`);
}
