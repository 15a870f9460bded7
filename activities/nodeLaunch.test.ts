// The one writer of node launches: what a backend returns is recorded once, the host with it.
import { expect, it } from 'vitest';
import type { ClusterBackend, LaunchResult, NodeLaunch } from '../cluster/types.ts';
import { parseJobSpec } from '../common/spec/index.ts';
import { describeEachStore } from '../store/testing.ts';
import { launchNode } from './nodeLaunch.ts';

const parsed = parseJobSpec({ metadata: { name: 'placed', user: 'ada' }, spec: { nodes: { min: 1 }, entrypoint: { command: 'true' } } });
if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
const launch: NodeLaunch = { jobId: 'placed', nodeId: 0, incarnation: 0, spec: parsed.spec, resources: parsed.spec.spec.resources, agentEnv: {} };

/** A backend that places every node on `gpu-07`; a second launch of an incarnation finds it there. */
function placingBackend(): ClusterBackend {
  const created = new Set<number>();
  return {
    name: 'local',
    async ensureNode(l): Promise<LaunchResult> {
      if (created.has(l.incarnation)) return { pid: 4242, logPath: '/logs/node-0.log', host: 'gpu-07', created: false };
      created.add(l.incarnation);
      return { pid: 4242, logPath: '/logs/node-0.log', host: 'gpu-07', created: true, launched: { pid: 4242, logPath: '/logs/node-0.log' } };
    },
    async deleteNode() {},
    async findDeadNodes() {
      return [];
    },
  };
}

describeEachStore('launchNode', (h) => {
  it('records the host the backend placed the node on in node_launched, once per incarnation', async () => {
    const store = await h.open();
    const backend = placingBackend();
    expect(await launchNode(store, backend, launch)).toMatchObject({ host: 'gpu-07', created: true });
    expect(await launchNode(store, backend, launch)).toMatchObject({ host: 'gpu-07', created: false });
    const events = await store.nodeEvents.list('placed', { kinds: ['node_launched'] });
    expect(events.map((e) => e.data)).toEqual([{ pid: 4242, logPath: '/logs/node-0.log', host: 'gpu-07' }]);
    expect(await store.nodes.get({ jobId: 'placed', nodeId: 0, incarnation: 0 })).toMatchObject({ pid: 4242, logPath: '/logs/node-0.log' });
  });
});
