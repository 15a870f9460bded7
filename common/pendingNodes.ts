// Nodes the backend was asked to create that have not started (launched, not registered with the
// API): why, in the backend's own words. Read by watchNodes into the node rows for `rover status`,
// and freshly by the deadlines that decide a job's fate (the rendezvous join deadline, the pending
// timeout), whose reasons name them. Pure: the workflow imports it too.

export interface PendingNode {
  id: number;
  incarnation: number;
  /** The backend's words (e.g. "PodScheduled False: Unschedulable: 0/3 nodes are available: …"); null: it gives none. */
  reason: string | null;
}

/** Longest pending reason kept (a node row column; Kubernetes messages list every node of a cluster). */
export const PENDING_REASON_MAX = 1000;

/** Groups and node ids a note lists before it says how many more there are. */
const GROUPS_SHOWN = 3;
const IDS_SHOWN = 8;

/** Cuts a backend's message to what a reason and a node row hold. */
export function clipPendingReason(reason: string): string {
  const oneLine = reason.replace(/\s+/g, ' ').trim();
  return oneLine.length <= PENDING_REASON_MAX ? oneLine : `${oneLine.slice(0, PENDING_REASON_MAX - 1)}…`;
}

/**
 * "2 nodes still pending: nodes 0, 1 (Unschedulable: 0/3 nodes are available: …)". Nodes with
 * the same reason share it, so a 1,000-node job's note stays one line; empty for no nodes.
 */
export function pendingNote(nodes: readonly PendingNode[]): string {
  if (nodes.length === 0) return '';
  const groups = new Map<string, PendingNode[]>();
  for (const n of [...nodes].sort((a, b) => a.id - b.id)) {
    const why = n.reason ?? 'the backend gives no reason';
    groups.set(why, [...(groups.get(why) ?? []), n]);
  }
  // The reason most nodes share first.
  const ordered = [...groups.entries()].sort((a, b) => b[1].length - a[1].length);
  const parts = ordered.slice(0, GROUPS_SHOWN).map(([why, group]) => {
    const ids = group.slice(0, IDS_SHOWN).map((n) => (n.incarnation === 0 ? `${n.id}` : `${n.id} (incarnation ${n.incarnation})`));
    const more = group.length > IDS_SHOWN ? ` and ${group.length - IDS_SHOWN} more` : '';
    return `${group.length === 1 ? 'node' : 'nodes'} ${ids.join(', ')}${more} (${why})`;
  });
  const hidden = ordered.slice(GROUPS_SHOWN).reduce((sum, [, group]) => sum + group.length, 0);
  const rest = hidden > 0 ? `; ${hidden} more for other reasons` : '';
  return `${nodes.length} ${nodes.length === 1 ? 'node' : 'nodes'} still pending: ${parts.join('; ')}${rest}`;
}
