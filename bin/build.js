#!/usr/bin/env node
// The compiled CLI: `node bin/build.js` (npm run build; `npm ci` and `npm install` run it as
// `prepare`) compiles the sources listed in tsconfig.build.json to dist/ and then writes
// dist/.build-stamp, dated when the compile started. bin/rover.js runs dist/ only while that
// stamp is newer than every source file and folder (buildIsFresh), so an edit, a `git pull` or a
// deleted file sends it back to the TypeScript sources (through tsx) until the next build.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const distDir = path.join(root, 'dist');
const stamp = path.join(distDir, '.build-stamp');

/** The folders tsconfig.build.json compiles, absolute. */
function sourceFolders() {
  const { include } = JSON.parse(readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8'));
  return include.map((folder) => path.join(root, folder));
}

/** Newest modification time (ms) of the TypeScript files and the folders under `dir`. */
function newestSourceMtime(dir) {
  let newest = statSync(dir).mtimeMs; // a folder's time moves when a file is added, removed or renamed
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

/** True when dist/ was built after the last change to any source; false when missing or older. */
export function buildIsFresh() {
  let built;
  try {
    built = statSync(stamp).mtimeMs;
  } catch {
    return false;
  }
  return sourceFolders().every((dir) => newestSourceMtime(dir) < built);
}

/**
 * Compiles to a clean dist/ and stamps it. Type errors do not stop the build (the JavaScript does
 * not depend on types; `npm run typecheck` reports them): tsc's exit status 2 means "errors,
 * output generated". Returns 0, or tsc's status when it generated nothing.
 */
function build() {
  const startedAt = new Date();
  rmSync(distDir, { recursive: true, force: true });
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const { status } = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (status !== 0 && status !== 2) {
    process.stderr.write('rover build: tsc emitted nothing; bin/rover.js runs the TypeScript sources until a build succeeds\n');
    return status ?? 1;
  }
  if (status === 2) process.stderr.write('rover build: built despite the type errors above (see npm run typecheck)\n');
  writeFileSync(stamp, `${startedAt.toISOString()}\n`);
  // Dated at the start: a source saved while tsc ran is newer, so the build counts as stale.
  utimesSync(stamp, startedAt, startedAt);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = build();
