// `rover status` reads what the workflow does not hold from the store: the training progress
// (cli/progress.ts: steps and leases are hot-path data) and why launched nodes are still pending (watchNodes keeps
// it in the node rows; a reason change is no workflow event). Best effort: no store, no extras.
import { existsSync } from 'node:fs';
import type { RoverConfig } from '../common/config.ts';
import type { JobStatus } from '../workflows/job/messages.ts';
import { openStore, type Store } from '../store/index.ts';

/** Runs `read` on the configured store; undefined when there is none to read or it fails. */
export async function withStore<T>(config: RoverConfig, read: (store: Store) => Promise<T>): Promise<T | undefined> {
  // Never create an empty SQLite file just to look.
  if (config.storeUrl.startsWith('sqlite:') && !existsSync(config.storeUrl.slice('sqlite:'.length))) return undefined;
  try {
    const store = await openStore(config.storeUrl);
    try {
      return await read(store);
    } finally {
      await store.close();
    }
  } catch {
    return undefined;
  }
}

/** The status with each launching node's pending reason from the store (NodeView.pending). */
export async function withPendingReasons(config: RoverConfig, status: JobStatus): Promise<JobStatus> {
  if (!status.nodes.some((n) => n.status === 'launching')) return status;
  const rows = await withStore(config, (store) => store.nodes.listByJob(status.jobId, { statuses: ['launching'] }));
  if (!rows) return status;
  const nodes = status.nodes.map((n) => {
    const row = n.status === 'launching' ? rows.find((r) => r.nodeId === n.id && r.incarnation === n.incarnation) : undefined;
    return row?.pendingReason ? { ...n, pending: row.pendingReason } : n;
  });
  return { ...status, nodes };
}
