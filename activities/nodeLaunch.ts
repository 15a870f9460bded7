// The one writer of node launches, for every backend: backends act (spawn a process, create a
// pod, submit a Ray job) and return what happened; this records it.
import type { ClusterBackend, LaunchResult, NodeLaunch } from '../cluster/types.ts';
import type { Store } from '../store/index.ts';

/**
 * Launches one node incarnation: writes its row first (launching, with this incarnation's
 * resources: the spec's or a plan's), asks the backend to create it (idempotent per incarnation),
 * then records the pid and log path and logs node_launched with the host, when the backend says
 * the launch is not recorded yet. Safe to run again for the same incarnation (a retried activity).
 * The host goes into the event only: the row's host is the address the agent announces when it
 * registers (what its peers connect to), not the machine.
 */
export async function launchNode(store: Store, backend: ClusterBackend, launch: NodeLaunch): Promise<LaunchResult> {
  const key = { jobId: launch.jobId, nodeId: launch.nodeId, incarnation: launch.incarnation };
  const { node } = await store.nodes.upsertLaunch({ ...key, backend: backend.name, status: 'launching', resources: launch.resources });
  const result = await backend.ensureNode(launch, node);
  const launched = result.launched;
  if (launched) {
    await store.transaction(async (tx) => {
      await tx.nodes.update(key, { pid: result.pid, logPath: result.logPath });
      await tx.nodeEvents.append({ ...key, kind: 'node_launched', data: { ...launched, host: result.host } });
    });
  }
  return result;
}
