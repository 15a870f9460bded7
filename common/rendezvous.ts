// Rendezvous round decision: a pure function of the round's members, its limits and the clock.
// The API calls it on every join and status poll; it does no I/O and takes `now` as input.

export interface RoundMember {
  node: number;
  incarnation: number;
  /** Address other nodes reach this node at; becomes MASTER_ADDR if it gets group rank 0. */
  host: string;
  /** Port free on `host` when the node joined; becomes MASTER_PORT if it gets group rank 0. */
  freePort: number;
}

export interface RoundInput {
  /** Round number, used in failure reasons. */
  round: number;
  /** When the round opened (ms since epoch, or any clock shared with `now`). */
  openedAt: number;
  /** When the latest member joined; null while nobody has. */
  lastJoinAt: number | null;
  now: number;
  /** One entry per node is expected; if a node appears twice, its highest incarnation counts. */
  members: RoundMember[];
  minNodes: number;
  maxNodes: number;
  /** The world must be a multiple of this many nodes. */
  unit: number;
  /** With at least `minNodes` members, close once nobody joined for this long. */
  lastCallTimeoutMs: number;
  /** Fail the round if it cannot close this long after it opened. */
  joinTimeoutMs: number;
}

export interface RankedMember {
  node: number;
  incarnation: number;
  groupRank: number;
}

export type RoundDecision =
  /** Keep the round open; nothing changes without a new join before `recheckAt`. */
  | { action: 'wait'; recheckAt: number }
  | {
      action: 'close';
      /** Members in the world, lowest node id first (group rank 0). */
      ranked: RankedMember[];
      /** Node ids that joined but were cut to keep the world a multiple of `unit`. */
      excluded: number[];
      masterAddr: string;
      masterPort: number;
    }
  | { action: 'fail'; reason: string };

export function decideRound(input: RoundInput): RoundDecision {
  const members = latestIncarnations(input.members).sort((a, b) => a.node - b.node);
  const joined = members.length;
  // Largest world we may form now: at most maxNodes, cut down to a multiple of unit.
  const usable = Math.floor(Math.min(joined, input.maxNodes) / input.unit) * input.unit;
  const formable = usable >= Math.max(input.minNodes, 1);

  const full = joined >= input.maxNodes;
  const lastCallAt = input.lastJoinAt === null ? null : input.lastJoinAt + input.lastCallTimeoutMs;
  const lastCallOver = joined >= input.minNodes && lastCallAt !== null && input.now >= lastCallAt;

  if (formable && (full || lastCallOver)) {
    const world = members.slice(0, usable);
    const rank0 = world[0]!;
    return {
      action: 'close',
      ranked: world.map((m, groupRank) => ({ node: m.node, incarnation: m.incarnation, groupRank })),
      excluded: members.slice(usable).map((m) => m.node),
      masterAddr: rank0.host,
      masterPort: rank0.freePort,
    };
  }

  const joinDeadline = input.openedAt + input.joinTimeoutMs;
  if (input.now >= joinDeadline && !formable) {
    return { action: 'fail', reason: failureReason(input, joined, usable) };
  }
  // Without new joins the answer changes only at the last call (a formable round closes then)
  // or at the join deadline (an unformable round fails then).
  return { action: 'wait', recheckAt: formable && lastCallAt !== null ? lastCallAt : joinDeadline };
}

function latestIncarnations(members: RoundMember[]): RoundMember[] {
  const byNode = new Map<number, RoundMember>();
  for (const m of members) {
    const seen = byNode.get(m.node);
    if (!seen || m.incarnation > seen.incarnation) byNode.set(m.node, m);
  }
  return [...byNode.values()];
}

function failureReason(input: RoundInput, joined: number, usable: number): string {
  const within = formatDuration(input.joinTimeoutMs);
  const prefix = `rendezvous round ${input.round}`;
  if (joined < input.minNodes) {
    return `${prefix}: only ${joined} of min ${input.minNodes} nodes joined within ${within}`;
  }
  return (
    `${prefix}: ${joined} nodes joined within ${within}, but a multiple of unit ${input.unit} ` +
    `gives ${usable}, below min ${input.minNodes}`
  );
}

/** 300000 → "5m", 90000 → "1m30s", 1500 → "1.5s", 200 → "200ms". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const totalSeconds = ms / 1000;
  const minutes = Math.floor(totalSeconds / 60);
  const seconds = Math.round((totalSeconds - minutes * 60) * 1000) / 1000;
  if (minutes === 0) return `${seconds}s`;
  return seconds === 0 ? `${minutes}m` : `${minutes}m${seconds}s`;
}
