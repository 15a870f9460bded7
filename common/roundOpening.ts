// The one policy for opening rendezvous rounds, pure. Five things may ask for a round: the job's
// start, an agent's join, a process failure, a hang, and the job workflow (scale, relaunch, a
// Brain plan). Each caller reads the job's latest round, asks decideRoundOpening, and persists the
// answer once (store/index.ts applyRoundOpening), which then emits round_opened.

/** What the policy needs of the job's latest round. */
export interface LatestRound {
  round: number;
  /** ROUND_OPEN ('open'), 'closed' or 'failed'. */
  status: string;
  maxNodes: number;
}

export type RoundTrigger =
  /** The job starts (prepareJob): round 1 for the planned node count. */
  | { kind: 'job_start'; targetNodes: number }
  /** An agent joins; `memberOfLatest`: this incarnation is a member of the latest round. */
  | { kind: 'join'; node: number; incarnation: number; memberOfLatest: boolean }
  /** A training process failed while its round ran: its peers must restart with it. */
  | { kind: 'process_failed'; node: number; localRank: number | undefined; signal: string | null; exitCode: number | null }
  /** No progress in `round` (a hang_suspected event): restart every node's processes. */
  | { kind: 'hang'; round: number; idleMs: number; hangEventId: number }
  /** The job workflow wants `targetNodes` (scale, relaunch, a Brain plan): resize the open round or open one. */
  | { kind: 'workflow'; targetNodes: number; cause: string };

export type RoundOpening =
  /** Nothing to write; `round` is the round the caller goes on with (undefined: none yet). */
  | { action: 'none'; round: number | undefined }
  | { action: 'open'; round: number; minNodes: number; maxNodes: number; cause: string }
  /** The open round takes a new node count; no event. */
  | { action: 'resize'; round: number; maxNodes: number };

export interface RoundSpec {
  /** spec.nodes.min */
  minNodes: number;
  /** spec.nodes.initial: the size of a round when no earlier round says otherwise. */
  initialNodes: number;
}

/** The policy's view of a job spec's `spec.nodes`. */
export function roundSpec(spec: { nodes: { min: number; initial: number } }): RoundSpec {
  return { minNodes: spec.nodes.min, initialNodes: spec.nodes.initial };
}

/**
 * Decides whether `trigger` opens a round, given the job's latest round (undefined: none yet).
 * Rules: the job's start opens round 1 once; a join opens the next round unless one is open or
 * the joiner is a member of the latest closed round; a process failure opens the next round only
 * after a closed one (a failure during a rendezvous is part of it); a hang opens the next round
 * only while its round is the latest and not open (one restart per hang); the workflow resizes an
 * open round or opens the next. A new round keeps the latest round's size, except where the
 * trigger names one.
 */
export function decideRoundOpening(latest: LatestRound | undefined, trigger: RoundTrigger, spec: RoundSpec): RoundOpening {
  const next = (latest?.round ?? 0) + 1;
  const open = (maxNodes: number, cause: string): RoundOpening => ({ action: 'open', round: next, minNodes: spec.minNodes, maxNodes, cause });
  const none: RoundOpening = { action: 'none', round: latest?.round };
  const isOpen = latest?.status === 'open';
  switch (trigger.kind) {
    case 'job_start':
      return latest ? none : open(trigger.targetNodes, 'job start');
    case 'join':
      if (isOpen || (latest?.status === 'closed' && trigger.memberOfLatest)) return none;
      return open(latest?.maxNodes ?? spec.initialNodes, `node ${trigger.node} incarnation ${trigger.incarnation} joined`);
    case 'process_failed': {
      if (latest?.status !== 'closed') return none;
      const how = trigger.signal ? `killed by ${trigger.signal}` : `exit code ${trigger.exitCode ?? 'none'}`;
      return open(latest.maxNodes, `process failed on node ${trigger.node} (local rank ${trigger.localRank ?? '?'}, ${how})`);
    }
    case 'hang':
      if (!latest || latest.round !== trigger.round || isOpen) return none;
      return open(latest.maxNodes, `hang: no training progress for ${Math.round(trigger.idleMs / 1000)} s (hang_suspected #${trigger.hangEventId})`);
    case 'workflow':
      if (isOpen) return { action: 'resize', round: latest.round, maxNodes: trigger.targetNodes };
      return open(trigger.targetNodes, trigger.cause);
  }
}
