// When the compiled build in dist/ may be run instead of the sources (bin/build.js buildIsFresh):
// only while no source file changed, appeared or went since the build started; other files in
// the source folders (Python's __pycache__ beside the Python client) do not make it stale.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { buildIsFresh, writeStamp } from './build.js';

const roots: string[] = [];
afterEach(() => {
  for (const dir of roots.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A project with src/a.ts and src/lib/b.ts, built (stamped) an hour after its files were written. */
function builtProject(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'rover-build-'));
  roots.push(root);
  writeFileSync(path.join(root, 'tsconfig.build.json'), JSON.stringify({ include: ['src'] }));
  mkdirSync(path.join(root, 'src', 'lib'), { recursive: true });
  mkdirSync(path.join(root, 'dist'));
  const past = new Date(Date.now() - 2 * 3600_000);
  for (const f of ['src/a.ts', 'src/lib/b.ts']) {
    writeFileSync(path.join(root, f), 'export {};\n');
    utimesSync(path.join(root, f), past, past);
  }
  writeStamp(root, new Date(Date.now() - 3600_000), ['src/a.ts', 'src/lib/b.ts']);
  return root;
}

it('runs the build until a source file is edited, added or deleted', () => {
  const edited = builtProject();
  expect(buildIsFresh(edited)).toBe(true);
  writeFileSync(path.join(edited, 'src/lib/b.ts'), 'export const b = 1;\n');
  expect(buildIsFresh(edited)).toBe(false);

  const added = builtProject();
  const past = new Date(Date.now() - 2 * 3600_000);
  writeFileSync(path.join(added, 'src/c.ts'), 'export {};\n');
  utimesSync(path.join(added, 'src/c.ts'), past, past); // even one with an old date (a git checkout)
  expect(buildIsFresh(added)).toBe(false);

  const deleted = builtProject();
  rmSync(path.join(deleted, 'src/a.ts'));
  expect(buildIsFresh(deleted)).toBe(false);
});

it('stays current when other files appear in the source folders, and is stale with no stamp', () => {
  const root = builtProject();
  mkdirSync(path.join(root, 'src', '__pycache__'));
  writeFileSync(path.join(root, 'src', '__pycache__', 'client.cpython-311.pyc'), 'x');
  writeFileSync(path.join(root, 'src', 'notes.md'), 'x');
  expect(buildIsFresh(root)).toBe(true);
  rmSync(path.join(root, 'dist'), { recursive: true });
  expect(buildIsFresh(root)).toBe(false);
});
