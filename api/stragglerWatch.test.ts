import { describe, expect, it } from 'vitest';
import { findStragglers, nextComputeWindow, STRAGGLER_STALE_MS, STRAGGLER_WINDOW } from './stragglerWatch.ts';

interface FakeNode {
  nodeId: number;
  incarnation: number;
  step: number | null;
  computeWindow: number[];
  stepAt: number | null;
  lastHeartbeatAt: number | null;
  stragglerAt: number | null;
}

/** Feeds `steps` steps of every node's compute seconds (two heartbeats per step), as the heartbeat writes them. */
function feed(nodes: Map<number, FakeNode>, seconds: Record<number, number>, steps: number, clock: { t: number }, from = 1) {
  for (let step = from; step < from + steps; step++) {
    clock.t += 1000;
    for (const [id, s] of Object.entries(seconds)) {
      const node = nodes.get(Number(id)) ?? { nodeId: Number(id), incarnation: 0, step: null, computeWindow: [], stepAt: null, lastHeartbeatAt: null, stragglerAt: null };
      for (let beat = 0; beat < 2; beat++) {
        const window = nextComputeWindow(node, step, s);
        if (window) Object.assign(node, { computeWindow: window, step, stepAt: clock.t });
        node.lastHeartbeatAt = clock.t;
      }
      nodes.set(node.nodeId, node);
    }
  }
}

describe('straggler windows on node rows', () => {
  it('counts each step once and keeps the latest STRAGGLER_WINDOW samples', () => {
    const nodes = new Map<number, FakeNode>();
    feed(nodes, { 0: 0.1 }, STRAGGLER_WINDOW + 3, { t: 0 });
    expect(nodes.get(0)!.computeWindow).toEqual(Array(STRAGGLER_WINDOW).fill(0.1));
    expect(nextComputeWindow(nodes.get(0)!, nodes.get(0)!.step, undefined)).toBeUndefined();
  });

  it('finds a node sustained above 2× the job median once its window is full, and not once reported', () => {
    const nodes = new Map<number, FakeNode>();
    const clock = { t: 0 };
    feed(nodes, { 0: 0.1, 1: 0.1, 2: 0.6 }, STRAGGLER_WINDOW - 1, clock);
    expect(findStragglers([...nodes.values()], clock.t)).toEqual([]);
    feed(nodes, { 0: 0.1, 1: 0.1, 2: 0.6 }, 1, clock, STRAGGLER_WINDOW);
    expect(findStragglers([...nodes.values()], clock.t)).toEqual([{ node: 2, incarnation: 0, seconds: 0.6, medianSeconds: 0.1 }]);
    nodes.get(2)!.stragglerAt = clock.t;
    expect(findStragglers([...nodes.values()], clock.t)).toEqual([]);
  });

  it('ignores single slow steps and nodes within the factor', () => {
    const even = new Map<number, FakeNode>();
    const clock = { t: 0 };
    feed(even, { 0: 0.1, 1: 0.15, 2: 0.19 }, 20, clock);
    expect(findStragglers([...even.values()], clock.t)).toEqual([]);
    const spikes = new Map<number, FakeNode>();
    for (let step = 1; step <= 30; step++) {
      feed(spikes, { 0: 0.1, 1: 0.1, 2: step % 4 === 0 ? 1 : 0.1 }, 1, clock, step);
      expect(findStragglers([...spikes.values()], clock.t)).toEqual([]);
    }
  });

  it('drops nodes whose step stopped moving from the job median', () => {
    const nodes = new Map<number, FakeNode>();
    const clock = { t: 0 };
    feed(nodes, { 0: 0.01, 1: 0.01, 4: 0.01 }, STRAGGLER_WINDOW, clock);
    clock.t += STRAGGLER_STALE_MS + 1;
    // Nodes 0, 1 and 4 went quiet; 2 and 3 alone at the same pace: no straggler against stale data.
    feed(nodes, { 2: 0.1, 3: 0.1 }, STRAGGLER_WINDOW * 2, clock, 50);
    expect(findStragglers([...nodes.values()], clock.t)).toEqual([]);
  });
});
