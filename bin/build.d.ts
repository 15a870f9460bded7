// Types of bin/build.js for the TypeScript sources that ask whether dist/ is current.

/** dist/, the compiled sources (absolute path). */
export const distDir: string;
/** True when `rootDir`'s dist/ (default: this repository's) is current: see bin/build.js. */
export function buildIsFresh(rootDir?: string): boolean;
/** Stamps a build of `rootDir` started at `startedAt` from `files` (relative paths, sorted). */
export function writeStamp(rootDir: string, startedAt: Date, files: string[]): void;
