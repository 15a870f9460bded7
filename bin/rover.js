#!/usr/bin/env node
// The `rover` command. Runs the compiled CLI in dist/ when it is up to date (fast start: no
// TypeScript to transpile), otherwise the TypeScript sources through tsx; see bin/build.js.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildIsFresh, distDir } from './build.js';

if (buildIsFresh()) {
  await import(pathToFileURL(path.join(distDir, 'cli', 'main.js')).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
