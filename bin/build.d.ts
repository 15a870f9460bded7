// Types of bin/build.js for the TypeScript sources that ask whether dist/ is current.

/** dist/, the compiled sources (absolute path). */
export const distDir: string;
/** True when dist/ was built after the last change to any source; false when missing or older. */
export function buildIsFresh(): boolean;
