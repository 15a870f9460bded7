// Builds the self-contained agent bundle for the Ray backend:
//   npx tsx deploy/agent-bundle/build.ts [out-file]   (default dist/rover-agent.mjs)
// Copy the file to the Ray nodes (or a shared filesystem) and point ROVER_RAY_AGENT_BUNDLE at it.
import path from 'node:path';
import { AGENT_BUNDLE_FILE, buildAgentBundle } from '../../cluster/ray/agentBundle.ts';

const out = path.resolve(process.argv[2] ?? path.join('dist', AGENT_BUNDLE_FILE));
const bundle = await buildAgentBundle(out);
process.stdout.write(`${bundle.path}\nsha256 ${bundle.sha256}\n`);
