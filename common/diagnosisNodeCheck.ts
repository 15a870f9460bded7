// Pre-flight node check and straggler detection, pure. Round 1 pairs the nodes; each pair runs
// a compute probe and a network exchange. Round 2 pairs the slowest (failed ones first) with the
// fastest, so a bad node cannot hide behind a bad partner. A node that failed or timed out in
// both rounds is faulty; one slower than STRAGGLER_FACTOR × the median is a straggler.

export const STRAGGLER_FACTOR = 2;

/** One node's result in one round: elapsed ms of probe + exchange, or null when it failed or timed out. */
export interface CheckResult {
  node: number;
  elapsedMs: number | null;
}

export type Pair = [number, number];

/** Round 1: neighbours in id order; with an odd count the last node also pairs with the first. */
export function pairRound1(nodes: number[]): Pair[] {
  const ids = [...nodes].sort((a, b) => a - b);
  const pairs: Pair[] = [];
  for (let i = 0; i + 1 < ids.length; i += 2) pairs.push([ids[i]!, ids[i + 1]!]);
  if (ids.length % 2 === 1 && ids.length > 1) pairs.push([ids[ids.length - 1]!, ids[0]!]);
  return pairs;
}

/** Round 2: slowest with fastest, failed nodes counting as slowest. */
export function pairRound2(round1: CheckResult[]): Pair[] {
  const order = [...round1].sort((a, b) => cost(b) - cost(a) || a.node - b.node).map((r) => r.node);
  const pairs: Pair[] = [];
  for (let i = 0, j = order.length - 1; i < j; i++, j--) pairs.push([order[i]!, order[j]!]);
  if (order.length % 2 === 1 && order.length > 1) pairs.push([order[Math.floor(order.length / 2)]!, order[order.length - 1]!]);
  return pairs;
}

function cost(r: CheckResult): number {
  return r.elapsedMs ?? Number.POSITIVE_INFINITY;
}

export interface CheckVerdict {
  faulty: number[];
  stragglers: number[];
  /** Median of each healthy node's best time. */
  medianMs: number | null;
}

/** Verdict over both rounds: faulty = failed in both; straggler = best time above factor × median. */
export function nodeCheckVerdict(round1: CheckResult[], round2: CheckResult[], factor = STRAGGLER_FACTOR): CheckVerdict {
  const nodes = [...new Set([...round1, ...round2].map((r) => r.node))].sort((a, b) => a - b);
  const failedIn = (results: CheckResult[], node: number) => results.some((r) => r.node === node && r.elapsedMs === null);
  const faulty = nodes.filter((n) => failedIn(round1, n) && failedIn(round2, n));
  const best = new Map<number, number>();
  for (const r of [...round1, ...round2]) {
    if (r.elapsedMs !== null && !faulty.includes(r.node)) best.set(r.node, Math.min(best.get(r.node) ?? Infinity, r.elapsedMs));
  }
  const medianMs = median([...best.values()]);
  const stragglers = medianMs === null ? [] : nodes.filter((n) => (best.get(n) ?? 0) > factor * medianMs);
  return { faulty, stragglers, medianMs };
}

/**
 * Stragglers while training: nodes whose median step time over the window is above factor ×
 * the job's median, given at least `minSamples` steps per node (sustained, not one slow step).
 */
export function detectStragglers(stepTimes: { node: number; ms: number[] }[], factor = STRAGGLER_FACTOR, minSamples = 5): number[] {
  const perNode = stepTimes.filter((s) => s.ms.length >= minSamples).map((s) => ({ node: s.node, median: median(s.ms)! }));
  if (perNode.length < 2) return [];
  const job = median(perNode.map((p) => p.median))!;
  return perNode.filter((p) => p.median > factor * job).map((p) => p.node).sort((a, b) => a - b);
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
