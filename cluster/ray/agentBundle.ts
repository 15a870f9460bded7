// The agent as one self-contained ES module (agent/main.ts and everything it imports, npm
// packages included; no native code), so a Ray node needs only Node.js ≥ 20 to run it.
// esbuild comes with tsx, which Rover already depends on.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../common/repoRoot.ts';

export const AGENT_BUNDLE_FILE = 'rover-agent.mjs';
const agentEntry = path.join(repoRoot, 'agent/main.ts');

export interface AgentBundle {
  path: string;
  /** sha256 of the file, hex: names the uploaded package, so a changed agent is a new package. */
  sha256: string;
}

/** Bundles agent/main.ts into `outFile` (written atomically). */
export async function buildAgentBundle(outFile: string): Promise<AgentBundle> {
  const { build } = await import('esbuild');
  mkdirSync(path.dirname(outFile), { recursive: true });
  const tmp = `${outFile}.${process.pid}.tmp`;
  await build({
    entryPoints: [agentEntry],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    // Some CommonJS dependencies call require() for Node built-ins.
    banner: { js: "import { createRequire as __roverCreateRequire } from 'node:module'; const require = __roverCreateRequire(import.meta.url);" },
  });
  renameSync(tmp, outFile);
  return describeAgentBundle(outFile);
}

export function describeAgentBundle(file: string): AgentBundle {
  return { path: file, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') };
}
