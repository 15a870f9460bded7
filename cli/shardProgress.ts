// `rover status` reads the dataset's shard progress from the store (the workflow does not hold
// it: leases are hot-path data). Best effort: no store, no table.
import { existsSync } from 'node:fs';
import type { RoverConfig } from '../common/config.ts';
import { openStore, type ShardProgress } from '../store/index.ts';

export async function readShardProgress(config: RoverConfig, jobId: string): Promise<ShardProgress | undefined> {
  // Never create an empty SQLite file just to look.
  if (config.storeUrl.startsWith('sqlite:') && !existsSync(config.storeUrl.slice('sqlite:'.length))) return undefined;
  try {
    const store = await openStore(config.storeUrl);
    try {
      return await store.shards.progress(jobId);
    } finally {
      await store.close();
    }
  } catch {
    return undefined;
  }
}
