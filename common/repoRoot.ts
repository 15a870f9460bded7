// Where Rover's own files are (examples, deploy scripts, the .tools cache, TypeScript entry
// points), whether this code runs from the TypeScript sources or from the build in dist/.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root: the folder above common/ for the sources, the folder above dist/ for the
 * build (`npm run build` compiles common/repoRoot.ts to dist/common/repoRoot.js).
 */
export const repoRoot = path.resolve(fileURLToPath(new URL('..', import.meta.url)), import.meta.url.endsWith('.js') ? '..' : '.');
