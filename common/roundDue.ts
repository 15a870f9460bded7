// Whether an open rendezvous round has anything to decide, from its row alone. The round policy
// (common/rendezvous.ts decideRound) reads every member: O(N) per call. Polls and joins call it
// only when this says it would answer something other than 'wait', i.e. once per change (the join
// that fills the round, the last-call deadline, the join deadline), not on every poll.
// It mirrors decideRound's rules over the member count; common/roundDue.test.ts holds it to that.

export interface RoundRow {
  /** When the round opened (ms, same clock as `now`). */
  openedAt: number;
  /** When the latest member joined; null while nobody has. */
  lastJoinAt: number | null;
  /** Members so far, one per node (kept on the round row by each join). */
  memberCount: number;
  minNodes: number;
  maxNodes: number;
}

export interface RoundTimeouts {
  /** The world must be a multiple of this many nodes. */
  unit: number;
  lastCallTimeoutMs: number;
  joinTimeoutMs: number;
}

/** True when decideRound would close or fail the round now; false when it would only wait. */
export function roundDecisionDue(round: RoundRow, rules: RoundTimeouts, now: number): boolean {
  const joined = round.memberCount;
  const usable = Math.floor(Math.min(joined, round.maxNodes) / rules.unit) * rules.unit;
  const formable = usable >= Math.max(round.minNodes, 1);
  const full = joined >= round.maxNodes;
  const lastCallOver = joined >= round.minNodes && round.lastJoinAt !== null && now >= round.lastJoinAt + rules.lastCallTimeoutMs;
  if (formable) return full || lastCallOver;
  return now >= round.openedAt + rules.joinTimeoutMs;
}
