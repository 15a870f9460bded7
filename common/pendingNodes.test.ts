import { describe, expect, it } from 'vitest';
import { clipPendingReason, PENDING_REASON_MAX, pendingNote } from './pendingNodes.ts';

const UNSCHEDULABLE = 'pod not scheduled (PodScheduled False): Unschedulable: 0/3 nodes are available: 3 Insufficient cpu';

describe('pendingNote', () => {
  it.each([
    { name: 'no nodes', nodes: [], note: '' },
    { name: 'one node', nodes: [{ id: 1, incarnation: 0, reason: UNSCHEDULABLE }], note: `1 node still pending: node 1 (${UNSCHEDULABLE})` },
    {
      name: 'nodes sharing a reason share it, the commonest first, later incarnations named',
      nodes: [
        { id: 2, incarnation: 0, reason: 'container agent waiting: ImagePullBackOff: Back-off pulling image "rover:x"' },
        { id: 1, incarnation: 3, reason: UNSCHEDULABLE },
        { id: 0, incarnation: 0, reason: UNSCHEDULABLE },
        { id: 3, incarnation: 0, reason: null },
      ],
      note: `4 nodes still pending: nodes 0, 1 (incarnation 3) (${UNSCHEDULABLE}); node 2 (container agent waiting: ImagePullBackOff: Back-off pulling image "rover:x"); node 3 (the backend gives no reason)`,
    },
  ])('$name', ({ nodes, note }) => {
    expect(pendingNote(nodes)).toBe(note);
  });

  it('stays one short line for a thousand nodes', () => {
    const nodes = Array.from({ length: 1000 }, (_, id) => ({ id, incarnation: 0, reason: id < 990 ? UNSCHEDULABLE : `reason ${id}` }));
    const note = pendingNote(nodes);
    expect(note).toBe(`1000 nodes still pending: nodes 0, 1, 2, 3, 4, 5, 6, 7 and 982 more (${UNSCHEDULABLE}); node 990 (reason 990); node 991 (reason 991); 8 more for other reasons`);
  });
});

describe('clipPendingReason', () => {
  it('keeps one line of at most PENDING_REASON_MAX characters', () => {
    expect(clipPendingReason('0/3 nodes are available:\n  3 Insufficient cpu. ')).toBe('0/3 nodes are available: 3 Insufficient cpu.');
    const long = clipPendingReason('x'.repeat(5000));
    expect(long).toHaveLength(PENDING_REASON_MAX);
    expect(long.endsWith('…')).toBe(true);
  });
});
