#!/usr/bin/env node
// The compiled build: `node bin/build.js` (npm run build; `npm ci` and `npm install` run it as
// `prepare`) compiles the sources listed in tsconfig.build.json to dist/ and then writes
// dist/.build-stamp, dated when the compile started and listing the source files it compiled.
// bin/rover.js (and cluster/local/processes.ts for the worker, API and agents) runs dist/ only
// while that stamp is newer than every source file and lists exactly the source files there are
// (buildIsFresh), so an edit, a `git pull` or a deleted file sends it back to the TypeScript
// sources (through tsx) until the next build. Other files in the source folders (Python's
// __pycache__ beside the Python client) do not matter.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const distDir = path.join(root, 'dist');
const stampOf = (rootDir) => path.join(rootDir, 'dist', '.build-stamp');
/** The workflows' Temporal bundle, in dist/; workers/jobWorker.ts loads it by this name. */
const WORKFLOW_BUNDLE = 'workflow-bundle.js';

/** The TypeScript files under `dir`, sorted; tests (*.test.ts) included, as tsc sees them. */
function sourceFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== '__pycache__') out.push(...sourceFiles(full));
    } else if (entry.name.endsWith('.ts')) out.push(full);
  }
  return out.sort();
}

/** Every TypeScript file of the folders tsconfig.build.json compiles, relative to `rootDir`, sorted. */
function allSourceFiles(rootDir) {
  const { include } = JSON.parse(readFileSync(path.join(rootDir, 'tsconfig.build.json'), 'utf8'));
  return include.flatMap((folder) => sourceFiles(path.join(rootDir, folder))).map((f) => path.relative(rootDir, f));
}

/**
 * Writes the stamp of a build of `rootDir` that started at `startedAt` (a Date) from `files`
 * (allSourceFiles at that moment), dated `startedAt`: a source saved while tsc ran is newer, so
 * the build counts as stale.
 */
export function writeStamp(rootDir, startedAt, files) {
  writeFileSync(stampOf(rootDir), `${startedAt.toISOString()}\n${files.join('\n')}\n`);
  utimesSync(stampOf(rootDir), startedAt, startedAt);
}

/**
 * True when `rootDir`'s dist/ (default: this repository's) was built after the last change to any
 * source, from the same source files; false when missing, older, or a file was added or removed.
 */
export function buildIsFresh(rootDir = root) {
  let built;
  let listed;
  try {
    built = statSync(stampOf(rootDir)).mtimeMs;
    listed = readFileSync(stampOf(rootDir), 'utf8').split('\n').slice(1).filter(Boolean);
  } catch {
    return false;
  }
  const files = allSourceFiles(rootDir);
  return files.length === listed.length && files.every((f, i) => f === listed[i] && statSync(path.join(rootDir, f)).mtimeMs < built);
}

/**
 * Compiles to a clean dist/ and stamps it. Type errors do not stop the build (the JavaScript does
 * not depend on types; `npm run typecheck` reports them): tsc's exit status 2 means "errors,
 * output generated". Returns 0, or tsc's status when it generated nothing.
 */
function build() {
  const startedAt = new Date();
  const files = allSourceFiles(root);
  rmSync(distDir, { recursive: true, force: true });
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const { status } = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (status !== 0 && status !== 2) {
    process.stderr.write('rover build: tsc emitted nothing; bin/rover.js runs the TypeScript sources until a build succeeds\n');
    return status ?? 1;
  }
  if (status === 2) process.stderr.write('rover build: built despite the type errors above (see npm run typecheck)\n');
  bundleWorkflows();
  bundleAgent();
  writeStamp(root, startedAt, files);
  return 0;
}

/**
 * Bundles the compiled workflows into dist/workflow-bundle.js (Temporal's bundleWorkflowCode, the
 * webpack step every worker otherwise runs at start: seconds, tens of them on a loaded machine),
 * which the workers load from dist (workers/jobWorker.ts workflowSource). A failure only warns:
 * workers then bundle at start.
 */
function bundleWorkflows() {
  const script = `import { writeFileSync } from 'node:fs';
    import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
    const { code } = await bundleWorkflowCode({ workflowsPath: process.env.ROVER_WORKFLOWS, logger: new DefaultLogger('WARN') });
    writeFileSync(process.env.ROVER_WORKFLOW_BUNDLE, code);`;
  const env = { ...process.env, ROVER_WORKFLOWS: path.join(distDir, 'workflows', 'index.js'), ROVER_WORKFLOW_BUNDLE: path.join(distDir, WORKFLOW_BUNDLE) };
  const { status } = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit', cwd: root, env });
  if (status !== 0) process.stderr.write('rover build: could not bundle the workflows; workers bundle them at start\n');
}

/**
 * Replaces dist/agent/main.js by one file holding the agent and everything it imports (esbuild,
 * installed with tsx): a relaunched node's agent then starts without resolving and reading about
 * 140 modules (zod alone is 95 files), about 80 ms less before it registers (issue 13: within
 * 0.2 s). The bundle sits where the compiled entry was, so paths it derives from its own location
 * (common/repoRoot.ts) stay the same. A failure only warns: the agent then runs the tsc output.
 */
function bundleAgent() {
  const entry = path.join(distDir, 'agent', 'main.js');
  const script = `import { writeFileSync } from 'node:fs';
    import { build } from 'esbuild';
    const { outputFiles } = await build({
      entryPoints: [process.env.ROVER_AGENT_ENTRY], bundle: true, platform: 'node', format: 'esm', write: false, logLevel: 'warning',
      // Bundled CommonJS packages (pino) call require: give the module one.
      banner: { js: "import { createRequire as roverCreateRequire } from 'node:module'; const require = roverCreateRequire(import.meta.url);" },
    });
    writeFileSync(process.env.ROVER_AGENT_ENTRY, outputFiles[0].contents);`;
  const env = { ...process.env, ROVER_AGENT_ENTRY: entry };
  const { status } = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit', cwd: root, env });
  if (status !== 0) process.stderr.write('rover build: could not bundle the agent; it runs unbundled from dist/\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = build();
