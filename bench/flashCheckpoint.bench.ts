// Flash checkpoint: how long training blocks to save a state through shared memory and the
// agent's saver (write to /dev/shm + rename + notify), against a synchronous write + fsync of
// the same bytes to storage; printed as a ratio. The saver persists in the background and
// reports to a real API (in-memory store); the bench waits for it before cleaning up.
// Knobs: BENCH_FLASH_BYTES (default 1 GiB), BENCH_FLASH_ROUNDS (default 3, best of).
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { FlashSaver } from '../agent/flashCheckpoint.ts';
import { buildApi } from '../api/server.ts';
import { RoverClient, readTrainerEnv, writeDurably } from '../clients/ts/roverClient.ts';
import { ApiEndpoints } from '../common/apiUrls.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { openStore } from '../store/index.ts';
import { scratchDir } from './scratch.ts';

const BYTES = Number(process.env.BENCH_FLASH_BYTES ?? 1 << 30);
const ROUNDS = Number(process.env.BENCH_FLASH_ROUNDS ?? 3);
const job = `bench-flash-${randomBytes(3).toString('hex')}`;

const dir = scratchDir('flash');
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
const env = {
  ROVER_API_URL: apiUrl, ROVER_JOB: job, ROVER_TOKEN: 't', ROVER_NODE: '0', ROVER_INCARNATION: '0', ROVER_ROUND: '1',
  RANK: '0', WORLD_SIZE: '1', ROVER_CHECKPOINT_DIR: dir,
};
const flash = new RoverClient(readTrainerEnv({ ...env, ROVER_AGENT_URL: agentUrl }));
const state = randomBytes(BYTES);

try {
  let best = { flash: Infinity, sync: Infinity };
  const total = { flash: 0, sync: 0 };
  for (let i = 1; i <= ROUNDS; i++) {
    let t = performance.now();
    await flash.saveCheckpoint(i, state);
    const flashMs = performance.now() - t;
    await saver.flush(); // not part of the blocking time: the trainer is already training again
    t = performance.now();
    await writeDurably(path.join(dir, `sync-${i}.bin`), state);
    const syncMs = performance.now() - t;
    rmSync(path.join(dir, `sync-${i}.bin`));
    best = { flash: Math.min(best.flash, flashMs), sync: Math.min(best.sync, syncMs) };
    total.flash += flashMs;
    total.sync += syncMs;
    console.log(`round ${i}: flash blocks ${flashMs.toFixed(0)} ms, write+fsync ${syncMs.toFixed(0)} ms`);
  }
  const mib = (BYTES / (1 << 20)).toFixed(0);
  console.log(
    `flash checkpoint of ${mib} MiB: blocks ${best.flash.toFixed(0)} ms vs ${best.sync.toFixed(0)} ms synchronous ` +
      `→ ratio ${(best.flash / best.sync).toFixed(3)} (best of ${ROUNDS}); mean ratio ${(total.flash / total.sync).toFixed(3)}; ` +
      `saver failures: ${saver.failures.length}`,
  );
} finally {
  await saver.close({ removeShm: true });
  await app.close();
  await store.close();
}
