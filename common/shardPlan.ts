// How a dataset splits into shards: index ranges of shardSize samples (the last may be
// shorter), in order, or shuffled per epoch by a PRNG seeded from (seed, epoch) so every
// process that plans the same dataset gets the same order.
import type { DatasetSpec } from './spec/index.ts';

export interface SampleRange {
  /** First sample index, inclusive. */
  startIndex: number;
  /** Last sample index, exclusive. */
  endIndex: number;
}

/** mulberry32: a small seeded PRNG, the same on every platform; floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shardCount(dataset: Pick<DatasetSpec, 'size' | 'shardSize'>): number {
  return Math.ceil(dataset.size / dataset.shardSize);
}

/** The epoch's shards in leasing order. */
export function planEpoch(dataset: Pick<DatasetSpec, 'size' | 'shardSize' | 'shuffle' | 'seed'>, epoch: number): SampleRange[] {
  const ranges = Array.from({ length: shardCount(dataset) }, (_, i) => ({
    startIndex: i * dataset.shardSize,
    endIndex: Math.min(dataset.size, (i + 1) * dataset.shardSize),
  }));
  if (!dataset.shuffle) return ranges;
  const random = mulberry32(Math.imul(dataset.seed, 1_000_003) + epoch * 7919);
  for (let i = ranges.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ranges[i], ranges[j]] = [ranges[j]!, ranges[i]!];
  }
  return ranges;
}
