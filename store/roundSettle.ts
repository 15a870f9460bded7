// Settles an open rendezvous round by the one round policy (common/rendezvous.ts decideRound).
// The API calls it when an agent asks about its round; the job workflow's join-deadline timer
// calls it (through an activity) when no agent may be alive to ask. Closing records the ranks and
// round_closed; failing records rendezvous_failed with a reason that says how many nodes joined
// and, for nodes still pending, why (the pending reason watchNodes keeps in their rows).
import type { EventSource } from '../common/events.ts';
import { pendingNote, type PendingNode } from '../common/pendingNodes.ts';
import { decideRound } from '../common/rendezvous.ts';
import type { TransactionScope } from './index.ts';
import { ROUND_OPEN, type RoundKey } from './rendezvous.ts';

/** The job spec's rendezvous rules (the round row holds its own min and max). */
export interface RoundRules {
  unit: number;
  lastCallTimeoutMs: number;
  joinTimeoutMs: number;
}

export type RoundSettlement =
  /** Nothing changes before recheckAt without a new join. */
  | { status: 'open'; recheckAt: number }
  /** Closed now; openedAt tells how long it took. */
  | { status: 'closed'; openedAt: number }
  /** Failed now, with the reason logged in rendezvous_failed. */
  | { status: 'failed'; reason: string }
  /** It was not open (closed or failed already, or unknown): nothing written. */
  | { status: 'settled' };

export async function settleRound(
  tx: TransactionScope,
  key: RoundKey,
  rules: RoundRules,
  now: number,
  opts: { source?: EventSource } = {},
): Promise<RoundSettlement> {
  // Locked first (MySQL; SQLite runs one writer at a time): a join takes the same lock before it
  // adds a member, so the members read below are the ones the close commits with. Read unlocked,
  // a join committing between the read and the close was left in the round without a rank.
  const current = await tx.rendezvous.getRound(key, undefined, { lock: true });
  if (!current || current.status !== ROUND_OPEN) return { status: 'settled' };
  const members = await tx.rendezvous.listMembers(key);
  const decision = decideRound({
    round: key.round,
    openedAt: current.openedAt,
    lastJoinAt: current.lastJoinAt,
    now,
    members: members.map((m) => ({ node: m.nodeId, incarnation: m.incarnation, host: m.host, freePort: m.freePort ?? 0 })),
    minNodes: current.minNodes,
    maxNodes: current.maxNodes,
    unit: rules.unit,
    lastCallTimeoutMs: rules.lastCallTimeoutMs,
    joinTimeoutMs: rules.joinTimeoutMs,
  });
  if (decision.action === 'wait') return { status: 'open', recheckAt: decision.recheckAt };
  if (decision.action === 'fail') {
    // Read only when a round fails: the nodes that never came up, and why.
    const joined = new Set(members.map((m) => `${m.nodeId}/${m.incarnation}`));
    const pending: PendingNode[] = (await tx.nodes.listByJob(key.jobId, { statuses: ['launching'] }))
      .filter((n) => !joined.has(`${n.nodeId}/${n.incarnation}`))
      .map((n) => ({ id: n.nodeId, incarnation: n.incarnation, reason: n.pendingReason }));
    const note = pendingNote(pending);
    const reason = note ? `${decision.reason}; ${note}` : decision.reason;
    if (!(await tx.rendezvous.failRound(key))) return { status: 'settled' };
    await tx.nodeEvents.append({
      jobId: key.jobId,
      kind: 'rendezvous_failed',
      data: { round: key.round, reason, joined: members.length, pending: pending.length },
      ...(opts.source && { source: opts.source }),
    });
    return { status: 'failed', reason };
  }
  const ranks = decision.ranked.map((m) => ({ nodeId: m.node, rank: m.groupRank }));
  if (!(await tx.rendezvous.closeRound({ ...key, ranks, masterAddr: decision.masterAddr, masterPort: decision.masterPort }))) {
    return { status: 'settled' };
  }
  for (const m of decision.ranked) {
    await tx.nodes.update({ jobId: key.jobId, nodeId: m.node, incarnation: m.incarnation }, { rank: m.groupRank });
  }
  await tx.nodeEvents.append({
    jobId: key.jobId,
    kind: 'round_closed',
    data: { round: key.round, members: decision.ranked, excluded: decision.excluded, masterAddr: decision.masterAddr, masterPort: decision.masterPort },
    ...(opts.source && { source: opts.source }),
  });
  return { status: 'closed', openedAt: current.openedAt };
}
