// Torch flash checkpoint: the trainer-blocking time of rover_torch.Checkpointer.save for a 1 GiB
// state dict against torch.save + fsync and a raw memory copy of the same bytes, first save and
// steady state (bench/torch_checkpoint.py does the timing). The agent side is real: a FlashSaver
// persisting to a temp folder and reporting to a real API (in-memory store).
// Needs the torch venv (bash deploy/local/torch.sh). Knobs: BENCH_TORCH_BYTES, BENCH_TORCH_ROUNDS.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { FlashSaver } from '../agent/flashCheckpoint.ts';
import { buildApi } from '../api/server.ts';
import { ApiEndpoints } from '../common/apiUrls.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { openStore } from '../store/index.ts';
import { cachedTorchPython } from '../test/torchFixtures.ts';
import { scratchDir } from './scratch.ts';

const python = cachedTorchPython();
if (!python) {
  process.stderr.write('torchCheckpoint: torch is not installed; run `bash deploy/local/torch.sh` first\n');
  process.exit(2);
}
const job = `bench-torch-${randomBytes(3).toString('hex')}`;
const dir = scratchDir('torch');
const store = await openStore('sqlite::memory:');
const parsed = parseJobSpec({ metadata: { name: job, user: 'bench' }, spec: { entrypoint: { command: 'true' }, checkpoint: { dir, flash: true, keep: 1 } } });
if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
await store.jobs.create({ id: job, workflowId: `job-${job}`, user: 'bench', group: '', backend: 'local', spec: parsed.spec, phase: 'RUNNING', token: 't' });
await store.rendezvous.openRound({ jobId: job, round: 1, minNodes: 1, maxNodes: 1 });
await store.rendezvous.join({ jobId: job, round: 1, nodeId: 0, incarnation: 0, host: 'h' });
await store.rendezvous.closeRound({ jobId: job, round: 1, ranks: [{ nodeId: 0, rank: 0 }], masterAddr: 'h', masterPort: 1 });
const app = await buildApi({ config: loadConfig({}), store, logger: createLogger('bench', 'silent') });
const apiUrl = await app.listen({ port: 0, host: '127.0.0.1' });
const saver = new FlashSaver({ api: new ApiEndpoints([apiUrl]), job, node: 0, token: 't', checkpointDir: dir, log: createLogger('bench', 'warn') });
const agentUrl = await saver.start();
try {
  // Not spawnSync: this process's event loop serves the saver and the API meanwhile.
  const child = spawn(python, [path.join('bench', 'torch_checkpoint.py')], {
    stdio: 'inherit',
    env: {
      ...process.env, ROVER_API_URL: apiUrl, ROVER_JOB: job, ROVER_TOKEN: 't', ROVER_NODE: '0', ROVER_INCARNATION: '0',
      ROVER_ROUND: '1', RANK: '0', WORLD_SIZE: '1', ROVER_CHECKPOINT_DIR: dir, ROVER_AGENT_URL: agentUrl,
    },
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  await saver.flush();
  if (code !== 0) throw new Error(`bench/torch_checkpoint.py exited with ${code}`);
  if (saver.failures.length) throw new Error(`the saver failed: ${saver.failures.join('; ')}`);
} finally {
  await saver.close({ removeShm: true });
  await app.close();
  await store.close();
}
