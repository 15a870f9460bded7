import { expect, it } from 'vitest';
import { MAX_START_JITTER_MS, startJitterBoundMs } from './startJitter.ts';

it.each([
  [1, 1],
  [8, 8],
  [350, 350],
  [1000, 1000],
  [4000, MAX_START_JITTER_MS],
])('spreads the first requests of %i agents started together below %i ms', (nodes, bound) => {
  expect(startJitterBoundMs(nodes)).toBe(bound);
});
