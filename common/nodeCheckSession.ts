// The pre-flight node check's state machine, pure: (state, one agent's poll, facts) → (new state,
// events, answer). The API keeps the state in the store (one row per job, compare-and-set), so any
// replica answers any poll. Agents poll with their exchange server's address; once every live
// node without a verdict is ready (or spec.diagnosis.timeout passed), a session runs round 1
// (neighbours) and round 2 (slowest with fastest); a round ends when all its members reported or
// the timeout passed (silence counts as failure). A lone node (a relaunched incarnation) exchanges
// with a node that already passed, whose server stays open. State is plain JSON.
import { nodeCheckVerdict, pairRound1, pairRound2, type CheckResult, type Pair } from './diagnosisNodeCheck.ts';
import type { NodeCheckRequest, NodeCheckResponse, NodeCheckVerdictKind } from './nodeCheckProtocol.ts';

export interface CheckMember {
  node: number;
  incarnation: number;
  host: string;
  port: number;
  /** Its exchange server's pairing secret; handed only to the peers it is paired with. */
  secret: string;
  /** When this incarnation first announced itself (ms since the epoch). */
  readyAt: number;
}

export interface CheckSession {
  members: CheckMember[];
  round: 1 | 2;
  roundStartedAt: number;
  pairs: Pair[];
  /** Per round, by node id: elapsed ms of probe + exchange, null when it failed. */
  results: [Record<string, number | null>, Record<string, number | null>];
}

export interface NodeCheckState {
  /** The latest incarnation each node announced, by node id. */
  ready: Record<string, CheckMember>;
  session: CheckSession | null;
  /** By `node/incarnation`; hold: the workflow removes it (faulty or excluded straggler). */
  verdicts: Record<string, { verdict: NodeCheckVerdictKind; hold: boolean }>;
  /** Members that passed: partners for a lone node. */
  passed: CheckMember[];
}

/** A node_check event to append, as the store's event log takes it. */
export interface NodeCheckEvent {
  nodeId: number;
  incarnation: number;
  source: 'agent' | 'api';
  data: Record<string, unknown>;
}

export interface NodeCheckRules {
  /** spec.diagnosis.timeout, ms: wait for nodes to be ready, and for each round. */
  timeoutMs: number;
  probeBytes: number;
  /** spec.nodes.initial: the first session waits for this many ready nodes (within the timeout). */
  initialNodes: number;
  minNodes: number;
  excludeStragglers: boolean;
}

export interface NodeCheckStep {
  state: NodeCheckState;
  events: NodeCheckEvent[];
  response: NodeCheckResponse;
}

export const emptyNodeCheckState = (): NodeCheckState => ({ ready: {}, session: null, verdicts: {}, passed: [] });

const key = (node: number, incarnation: number) => `${node}/${incarnation}`;
const isMember = (s: CheckSession, node: number, incarnation: number) => s.members.some((m) => m.node === node && m.incarnation === incarnation);

/**
 * Whether stepping this poll needs the job's live nodes (`{node, incarnation}` of pending,
 * launching and running rows): only while no session runs and the poller awaits one. Callers read
 * them only then, so a poll during a session or after its verdict touches one row.
 */
export function needsLiveNodes(state: NodeCheckState, req: NodeCheckRequest): boolean {
  return state.session === null && !state.verdicts[key(req.node, req.incarnation)];
}

/**
 * One poll. `live` gives the job's live node incarnations; it is called only when
 * needsLiveNodes(prior, req). Never mutates `prior`. Events follow the state they describe:
 * persist the state, then append them, in one transaction.
 */
export function stepNodeCheck(
  prior: NodeCheckState,
  req: NodeCheckRequest,
  rules: NodeCheckRules,
  now: number,
  live: () => { node: number; incarnation: number }[],
): NodeCheckStep {
  const state = structuredClone(prior);
  const events: NodeCheckEvent[] = [];
  const done = state.verdicts[key(req.node, req.incarnation)];
  if (done) return { state, events, response: { action: 'done', ...done } };
  const known = state.ready[req.node];
  if (!known || known.incarnation <= req.incarnation) {
    const same = known?.incarnation === req.incarnation;
    state.ready[req.node] = { node: req.node, incarnation: req.incarnation, host: req.host, port: req.port, secret: req.secret, readyAt: same ? known.readyAt : now };
  }
  const session = state.session;
  if (session && isMember(session, req.node, req.incarnation) && req.result && req.result.round === session.round) {
    const results = session.results[session.round - 1]!;
    if (!(req.node in results)) {
      results[req.node] = req.result.ok ? req.result.seconds * 1000 : null;
      const { round, ok, seconds, error } = req.result;
      events.push({ nodeId: req.node, incarnation: req.incarnation, source: 'agent', data: { round, ok, seconds, ...(error && { error }) } });
    }
  }
  advance(state, rules, now, live, events);
  const verdict = state.verdicts[key(req.node, req.incarnation)];
  if (verdict) return { state, events, response: { action: 'done', ...verdict } };
  const current = state.session;
  if (!current || !isMember(current, req.node, req.incarnation) || req.node in current.results[current.round - 1]!) {
    return { state, events, response: { action: 'wait' } };
  }
  return { state, events, response: { action: 'probe', round: current.round, probeBytes: rules.probeBytes, peers: peersOf(state, current, req.node) } };
}

function peersOf(state: NodeCheckState, session: CheckSession, node: number) {
  const ids = session.pairs.filter((p) => p.includes(node)).map((p) => (p[0] === node ? p[1] : p[0]));
  const peers = ids.map((id) => session.members.find((m) => m.node === id)!);
  if (peers.length === 0) {
    // Alone: a node that passed earlier (its server is still open), a different one per round.
    const others = state.passed.filter((m) => m.node !== node);
    const partner = others[(session.round - 1) % Math.max(1, others.length)];
    if (partner) peers.push(partner);
  }
  return peers.map((m) => ({ node: m.node, host: m.host, port: m.port, secret: m.secret }));
}

function advance(state: NodeCheckState, rules: NodeCheckRules, now: number, live: () => { node: number; incarnation: number }[], events: NodeCheckEvent[]): void {
  if (!state.session) {
    const pending = Object.values(state.ready).filter((m) => !state.verdicts[key(m.node, m.incarnation)]);
    if (pending.length === 0) return;
    const expected = live().filter((n) => !state.verdicts[key(n.node, n.incarnation)]);
    const allIn = expected.every((n) => pending.some((m) => m.node === n.node && m.incarnation === n.incarnation));
    const firstReady = Math.min(...pending.map((m) => m.readyAt));
    // Nodes launch one by one: the first session also waits for spec.nodes.initial of them.
    const want = Object.keys(state.verdicts).length === 0 ? rules.initialNodes : 0;
    if ((!allIn || pending.length < want) && now - firstReady < rules.timeoutMs) return;
    state.session = { members: pending, round: 1, roundStartedAt: now, pairs: pairRound1(pending.map((m) => m.node)), results: [{}, {}] };
    return;
  }
  const session = state.session;
  const results = session.results[session.round - 1]!;
  const complete = session.members.every((m) => m.node in results);
  if (!complete && now - session.roundStartedAt < rules.timeoutMs) return;
  const outcome = (r: Record<string, number | null>): CheckResult[] => session.members.map((m) => ({ node: m.node, elapsedMs: r[m.node] ?? null }));
  if (session.round === 1) {
    session.round = 2;
    session.roundStartedAt = now;
    session.pairs = pairRound2(outcome(results));
    return;
  }
  const verdict = nodeCheckVerdict(outcome(session.results[0]), outcome(results));
  let kept = session.members.length - verdict.faulty.length;
  for (const m of session.members) {
    const faulty = verdict.faulty.includes(m.node);
    const straggler = !faulty && verdict.stragglers.includes(m.node);
    // Same rule as the workflow's: exclude while spec.nodes.min still holds.
    const exclude = straggler && rules.excludeStragglers && kept - 1 >= rules.minNodes;
    if (exclude) kept -= 1;
    const kind: NodeCheckVerdictKind = faulty ? 'faulty' : straggler ? 'straggler' : 'ok';
    const best = Math.min(...[session.results[0][m.node], results[m.node]].map((v) => v ?? Infinity));
    state.verdicts[key(m.node, m.incarnation)] = { verdict: kind, hold: faulty || exclude };
    if (!faulty) state.passed.push(m);
    events.push({
      nodeId: m.node,
      incarnation: m.incarnation,
      source: 'api',
      data: { verdict: kind, exclude, bestSeconds: Number.isFinite(best) ? best / 1000 : null, medianSeconds: verdict.medianMs === null ? null : verdict.medianMs / 1000 },
    });
  }
  state.session = null;
}
