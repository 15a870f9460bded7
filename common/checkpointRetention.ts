// Checkpoint retention (spec.checkpoint.keep), pure. A commit applies it in the transaction that
// records the commit (api/ledger.ts), so the reports it forgets are never handed out to resume
// from; the files themselves are deleted where they are, by an agent of the job
// (agent/checkpointDeletion.ts).

export interface Retention {
  /** Committed steps whose commit, reports and files go: all but the newest `keep`. */
  dropCommits: number[];
  /** Reports of steps below this one that never committed go too: the oldest kept commit (0: none). */
  partialBelow: number;
}

/**
 * What a job keeps after a commit: `committed` is every committed step (any order), `keep` is
 * spec.checkpoint.keep (≥ 1). Dropped steps come newest first.
 */
export function checkpointRetention(committed: number[], keep: number): Retention {
  const newestFirst = [...committed].sort((a, b) => b - a);
  return { dropCommits: newestFirst.slice(keep), partialBelow: newestFirst.slice(0, keep).at(-1) ?? 0 };
}
