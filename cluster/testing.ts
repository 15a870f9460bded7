// Test support for code that drives a ClusterBackend: a backend that only records what it was asked.
import type { ClusterBackend, NodeLaunch } from './types.ts';

/** A backend that launches nothing: every ensureNode is recorded in `launches` and reported created. */
export function captureBackend(name: ClusterBackend['name'] = 'local'): { backend: ClusterBackend; launches: NodeLaunch[] } {
  const launches: NodeLaunch[] = [];
  const backend: ClusterBackend = {
    name,
    async ensureNode(launch) {
      launches.push(launch);
      return { pid: null, logPath: null, host: null, created: true };
    },
    async deleteNode() {},
    async findDeadNodes() {
      return [];
    },
  };
  return { backend, launches };
}
