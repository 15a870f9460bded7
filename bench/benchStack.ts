// The embedded stack (`rover up`'s: Temporal dev server, worker, API, Brain) that the job
// benchmarks run on, in a fresh home under the OS temp folder. Every listener takes a free port,
// so a stack that is already up never makes a benchmark fail.
import type { Client } from '@temporalio/client';
import { connectTemporal } from '../cli/jobs.ts';
import { startStack, stopStack } from '../cli/up.ts';
import { loadConfig, type RoverConfig } from '../common/config.ts';
import { freePort } from '../deploy/local/devServer.ts';
import { openStore, type Store } from '../store/index.ts';
import { scratchDir } from './scratch.ts';

export interface BenchStack {
  home: string;
  config: RoverConfig;
  client: Client;
  store: Store;
  /** Closes the client and the store, then stops the stack's processes. */
  close(): Promise<void>;
}

/**
 * Starts a stack in a scratch folder `rover-bench-<label>-*` (bench/scratch.ts) with the caller's environment plus `env` (warn-level
 * logs unless `env` says otherwise) and connects a Temporal client and the store to it.
 */
export async function startBenchStack(label: string, env: Record<string, string> = {}): Promise<BenchStack> {
  const home = scratchDir(label);
  const config = loadConfig({
    ...process.env,
    ROVER_HOME: home,
    ROVER_TEMPORAL_PORT: String(await freePort()),
    ROVER_UI_PORT: String(await freePort()),
    ROVER_API_PORT: String(await freePort()),
    ROVER_BRAIN_PORT: String(await freePort()),
    ROVER_WORKER_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
    ROVER_LOG_LEVEL: 'warn',
    ...env,
  });
  await startStack(config);
  const { client, close } = await connectTemporal(config);
  const store = await openStore(config.storeUrl);
  return {
    home,
    config,
    client,
    store,
    close: async () => {
      await close();
      await store.close();
      await stopStack(config);
    },
  };
}
