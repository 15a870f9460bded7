import { describe, expect, it } from 'vitest';
import { STRAGGLER_STALE_MS, STRAGGLER_WINDOW, StragglerWindows } from './stragglerWatch.ts';

/** Feeds `steps` steps of every node's compute seconds; returns the findings. */
function feed(w: StragglerWindows, seconds: Record<number, number>, steps: number, opts: { from?: number; incarnation?: number; clock?: { t: number } } = {}) {
  const clock = opts.clock ?? { t: 0 };
  const found = [];
  for (let step = opts.from ?? 1; step < (opts.from ?? 1) + steps; step++) {
    clock.t += 1000;
    for (const [node, s] of Object.entries(seconds)) {
      // Two heartbeats per step: the repeat must not count twice.
      for (let beat = 0; beat < 2; beat++) {
        const f = w.observe({ jobId: 'j', node: Number(node), incarnation: Number(node) === 2 ? (opts.incarnation ?? 0) : 0, step, computeSeconds: s, now: clock.t });
        if (f) found.push(f);
      }
    }
  }
  return found;
}

describe('StragglerWindows', () => {
  it('reports a node sustained above 2× the job median once per incarnation', () => {
    const w = new StragglerWindows();
    expect(feed(w, { 0: 0.1, 1: 0.1, 2: 0.6 }, STRAGGLER_WINDOW - 1)).toEqual([]);
    const found = feed(w, { 0: 0.1, 1: 0.1, 2: 0.6 }, 5, { from: STRAGGLER_WINDOW });
    expect(found).toEqual([{ node: 2, incarnation: 0, seconds: 0.6, medianSeconds: 0.1 }]);
    // The next incarnation starts a new window and can be reported again.
    expect(feed(w, { 0: 0.1, 1: 0.1, 2: 0.1 }, 20, { from: 100, incarnation: 1 })).toEqual([]);
  });

  it('ignores single slow steps and nodes within the factor', () => {
    const w = new StragglerWindows();
    expect(feed(w, { 0: 0.1, 1: 0.15, 2: 0.19 }, 20)).toEqual([]);
    const spikes = new StragglerWindows();
    let found = 0;
    for (let step = 1; step <= 30; step++) {
      for (const node of [0, 1, 2]) {
        const s = node === 2 && step % 4 === 0 ? 1 : 0.1;
        if (spikes.observe({ jobId: 'j', node, incarnation: 0, step, computeSeconds: s, now: step * 1000 })) found++;
      }
    }
    expect(found).toBe(0);
  });

  it('drops nodes that stopped reporting from the job median', () => {
    const w = new StragglerWindows();
    const clock = { t: 0 };
    feed(w, { 0: 0.01, 1: 0.01, 4: 0.01 }, STRAGGLER_WINDOW, { clock });
    clock.t += STRAGGLER_STALE_MS + 1;
    // Nodes 0, 1 and 4 went quiet; 2 and 3 alone at the same pace: no straggler against stale data.
    expect(feed(w, { 2: 0.1, 3: 0.1 }, STRAGGLER_WINDOW * 2, { clock, from: 50 })).toEqual([]);
  });
});
