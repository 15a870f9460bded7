// spec.checkpoint.keep: which commits a new commit drops, and below which step partial steps go.
import { describe, expect, it } from 'vitest';
import { checkpointRetention } from './checkpointRetention.ts';

describe('checkpointRetention', () => {
  const table: { committed: number[]; keep: number; dropCommits: number[]; partialBelow: number; why: string }[] = [
    { committed: [100], keep: 1, dropCommits: [], partialBelow: 100, why: 'the first commit drops nothing' },
    { committed: [200, 100], keep: 1, dropCommits: [100], partialBelow: 200, why: 'keep 1: the older commit goes' },
    { committed: [100, 300, 200], keep: 2, dropCommits: [100], partialBelow: 200, why: 'any order: the newest two stay' },
    { committed: [400, 300, 200, 100], keep: 2, dropCommits: [200, 100], partialBelow: 300, why: 'several dropped, newest first' },
    { committed: [200, 100], keep: 3, dropCommits: [], partialBelow: 100, why: 'fewer commits than keep: all stay' },
    { committed: [], keep: 2, dropCommits: [], partialBelow: 0, why: 'no commit: nothing goes' },
  ];
  for (const { committed, keep, dropCommits, partialBelow, why } of table) {
    it(why, () => {
      expect(checkpointRetention(committed, keep)).toEqual({ dropCommits, partialBelow });
    });
  }
});
