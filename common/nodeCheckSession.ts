// The pre-flight node check's state machine, pure: (state, one agent's poll, facts) → (new state,
// events, answer). The API keeps the state in the store (one row per job, compare-and-set), so any
// replica answers any poll. Once every live node without a verdict has polled (or
// spec.diagnosis.timeout passed), a session runs round 1 (neighbours) and round 2 (slowest with
// fastest); a round ends when all its members reported or the timeout passed (silence counts as
// failure). A lone member (a relaunched incarnation) is paired, per round, with a partner: a node
// that passed earlier and is still live, which its heartbeat reply calls in (partnersWanted).
//
// Exchange servers and secrets are per round. Each participant of a round (its members and its
// partner) is first answered `serve`: it opens its server (or keeps the one it has) with a fresh
// secret that the server accepts from then on, and polls again with it; the round's servers are
// kept in the session and dropped when the round ends, so a peer is only ever handed a current
// round's secret. A member is handed its peers once each of them registered its server for the
// round; a peer that has not registered by half the round's timeout is left out of the handout
// (its own missing result fails it). Nobody waits on anyone without a timeout, so this cannot
// deadlock. State is plain JSON.
import { nodeCheckVerdict, pairRound1, pairRound2, type CheckResult, type Pair } from './diagnosisNodeCheck.ts';
import type { NodeCheckRequest, NodeCheckResponse, NodeCheckVerdictKind } from './nodeCheckProtocol.ts';
import type { EventDataInput } from './events.ts';

export interface CheckMember {
  node: number;
  incarnation: number;
  host: string;
  /** Port of the latest exchange server it registered (closed again once its part ended). */
  port?: number;
  /** An agent from before per-round secrets: its one server and secret, good for every round. */
  legacy?: { port: number; secret: string };
  /** When this incarnation first announced itself (ms since the epoch). */
  readyAt: number;
}

/** An exchange server a participant opened for the current round; handed only to its peers. */
export interface RoundServer {
  host: string;
  port: number;
  secret: string;
}

export interface CheckSession {
  /** The job's sessions count from 1; `serve` answers and registered servers name it. */
  id: number;
  members: CheckMember[];
  /** A lone member's partner in round 1 and in round 2 (null: none live); empty otherwise. */
  partners: [CheckMember | null, CheckMember | null];
  round: 1 | 2;
  roundStartedAt: number;
  /** This round's pairs, partners included. */
  pairs: Pair[];
  /** This round's servers, by node id; reset when a round starts. */
  servers: Record<string, RoundServer>;
  /** Per round, by node id: elapsed ms of probe + exchange, null when it failed. */
  results: [Record<string, number | null>, Record<string, number | null>];
}

export interface NodeCheckState {
  /** The latest incarnation each node announced, by node id. */
  ready: Record<string, CheckMember>;
  session: CheckSession | null;
  /** Sessions started so far. */
  sessions: number;
  /** By `node/incarnation`; hold: the workflow removes it (faulty or excluded straggler). */
  verdicts: Record<string, { verdict: NodeCheckVerdictKind; hold: boolean }>;
  /** Members that passed and were kept, one per node: partners for a lone member. */
  passed: CheckMember[];
}

/** A node_check event to append, as the store's event log takes it. */
export interface NodeCheckEvent {
  nodeId: number;
  incarnation: number;
  source: 'agent' | 'api';
  data: EventDataInput<'node_check'>;
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

/** Share of a round's timeout its members wait for their peers' servers before probing without them. */
export const SERVE_WINDOW = 0.5;

export const emptyNodeCheckState = (): NodeCheckState => ({ ready: {}, session: null, sessions: 0, verdicts: {}, passed: [] });

const key = (node: number, incarnation: number) => `${node}/${incarnation}`;
const isMember = (s: CheckSession, node: number, incarnation: number) => s.members.some((m) => m.node === node && m.incarnation === incarnation);
const partnerOf = (s: CheckSession) => s.partners[s.round - 1] ?? null;
/** Whether this incarnation takes part in the session's current round (a member, or its partner). */
function isParticipant(s: CheckSession, node: number, incarnation: number): boolean {
  const partner = partnerOf(s);
  return isMember(s, node, incarnation) || (partner?.node === node && partner.incarnation === incarnation);
}

/**
 * `node/incarnation` of the nodes that passed earlier and that the current round needs as peers:
 * the API flags them in their heartbeat replies. Stored beside the state, so a heartbeat reads it
 * without reading the session.
 */
export function partnersWanted(state: NodeCheckState): string[] {
  const partner = state.session && partnerOf(state.session);
  return partner ? [key(partner.node, partner.incarnation)] : [];
}

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
  const state = upgraded(structuredClone(prior));
  const events: NodeCheckEvent[] = [];
  const done = state.verdicts[key(req.node, req.incarnation)];
  if (done) {
    // Judged already; still a peer while a round needs it as its lone member's partner.
    if (state.session) {
      register(state, req);
      advanceSession(state, rules, now, events);
    }
    const session = state.session;
    if (!session || !isParticipant(session, req.node, req.incarnation)) return { state, events, response: { action: 'done', ...done } };
    return { state, events, response: req.node in session.servers ? { action: 'wait' } : { action: 'serve', session: session.id, round: session.round } };
  }
  const known = state.ready[req.node];
  if (!known || known.incarnation <= req.incarnation) {
    const same = known?.incarnation === req.incarnation;
    const legacy = req.port !== undefined && req.secret !== undefined ? { port: req.port, secret: req.secret } : undefined;
    const port = legacy?.port ?? (same ? known.port : undefined);
    state.ready[req.node] = { node: req.node, incarnation: req.incarnation, host: req.host, ...(port !== undefined && { port }), ...(legacy && { legacy }), readyAt: same ? known.readyAt : now };
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
  if (session) register(state, req);
  if (state.session) advanceSession(state, rules, now, events);
  else startSession(state, rules, now, live);
  const verdict = state.verdicts[key(req.node, req.incarnation)];
  if (verdict) return { state, events, response: { action: 'done', ...verdict } };
  const current = state.session;
  if (!current || !isMember(current, req.node, req.incarnation) || req.node in current.results[current.round - 1]!) {
    return { state, events, response: { action: 'wait' } };
  }
  if (!(req.node in current.servers)) return { state, events, response: { action: 'serve', session: current.id, round: current.round } };
  const ids = current.pairs.filter((p) => p.includes(req.node)).map((p) => (p[0] === req.node ? p[1] : p[0]));
  const waiting = ids.some((id) => !(id in current.servers)) && now - current.roundStartedAt < rules.timeoutMs * SERVE_WINDOW;
  if (waiting) return { state, events, response: { action: 'wait' } };
  const peers = ids.flatMap((id) => {
    const server = current.servers[id];
    return server ? [{ node: id, ...server }] : [];
  });
  return { state, events, response: { action: 'probe', round: current.round, probeBytes: rules.probeBytes, peers } };
}

/**
 * Records the server a participant opened for the current round: the first one it names counts.
 * An agent from before per-round secrets is registered with its one server.
 */
function register(state: NodeCheckState, req: NodeCheckRequest): void {
  const session = state.session!;
  if (req.node in session.servers || !isParticipant(session, req.node, req.incarnation)) return;
  const serving = req.serving?.session === session.id && req.serving.round === session.round ? req.serving : undefined;
  const server = serving ?? (req.serving === undefined && req.port !== undefined && req.secret !== undefined ? { port: req.port, secret: req.secret } : undefined);
  if (!server) return;
  session.servers[req.node] = { host: req.host, port: server.port, secret: server.secret };
  const ready = state.ready[req.node];
  if (ready?.incarnation === req.incarnation) ready.port = server.port;
}

function startSession(state: NodeCheckState, rules: NodeCheckRules, now: number, live: () => { node: number; incarnation: number }[]): void {
  const pending = Object.values(state.ready).filter((m) => !state.verdicts[key(m.node, m.incarnation)]);
  if (pending.length === 0) return;
  const liveNodes = live();
  const expected = liveNodes.filter((n) => !state.verdicts[key(n.node, n.incarnation)]);
  const allIn = expected.every((n) => pending.some((m) => m.node === n.node && m.incarnation === n.incarnation));
  const firstReady = Math.min(...pending.map((m) => m.readyAt));
  // Nodes launch one by one: the first session also waits for spec.nodes.initial of them.
  const want = Object.keys(state.verdicts).length === 0 ? rules.initialNodes : 0;
  if ((!allIn || pending.length < want) && now - firstReady < rules.timeoutMs) return;
  let partners: CheckSession['partners'] = [null, null];
  if (pending.length === 1) {
    // Alone: a live node that passed earlier, a different one per round when there are several.
    const isLive = (m: CheckMember) => liveNodes.some((n) => n.node === m.node && n.incarnation === m.incarnation);
    const others = state.passed.filter((m) => m.node !== pending[0]!.node && isLive(m));
    partners = [others[0] ?? null, others[1 % Math.max(1, others.length)] ?? null];
  }
  state.sessions += 1;
  const session: CheckSession = { id: state.sessions, members: pending, partners, round: 1, roundStartedAt: now, pairs: [], servers: {}, results: [{}, {}] };
  startRound(session, now, pairRound1(pending.map((m) => m.node)));
  state.session = session;
}

/** Enters `session.round`: its pairs (a lone member's with its partner) and no servers but legacy ones. */
function startRound(session: CheckSession, now: number, memberPairs: Pair[]): void {
  const partner = partnerOf(session);
  session.roundStartedAt = now;
  session.pairs = session.members.length === 1 ? (partner ? [[session.members[0]!.node, partner.node]] : []) : memberPairs;
  session.servers = {};
  for (const p of [...session.members, ...(partner ? [partner] : [])]) {
    if (p.legacy) session.servers[p.node] = { host: p.host, ...p.legacy };
  }
}

function advanceSession(state: NodeCheckState, rules: NodeCheckRules, now: number, events: NodeCheckEvent[]): void {
  const session = state.session!;
  const results = session.results[session.round - 1]!;
  const complete = session.members.every((m) => m.node in results);
  if (!complete && now - session.roundStartedAt < rules.timeoutMs) return;
  const outcome = (r: Record<string, number | null>): CheckResult[] => session.members.map((m) => ({ node: m.node, elapsedMs: r[m.node] ?? null }));
  if (session.round === 1) {
    session.round = 2;
    startRound(session, now, pairRound2(outcome(results)));
    return;
  }
  const verdict = nodeCheckVerdict(outcome(session.results[0]), outcome(results));
  let kept = session.members.length - verdict.faulty.length;
  for (const m of session.members) {
    const faulty = verdict.faulty.includes(m.node);
    const straggler = !faulty && verdict.stragglers.includes(m.node);
    // Decided here, once: the agent is held on this answer, and the workflow removes it as the event says.
    const exclude = straggler && rules.excludeStragglers && kept - 1 >= rules.minNodes;
    if (exclude) kept -= 1;
    const kind: NodeCheckVerdictKind = faulty ? 'faulty' : straggler ? 'straggler' : 'ok';
    const best = Math.min(...[session.results[0][m.node], results[m.node]].map((v) => v ?? Infinity));
    state.verdicts[key(m.node, m.incarnation)] = { verdict: kind, hold: faulty || exclude };
    if (!faulty && !exclude) state.passed = [...state.passed.filter((p) => p.node !== m.node), m];
    events.push({
      nodeId: m.node,
      incarnation: m.incarnation,
      source: 'api',
      data: { verdict: kind, exclude, bestSeconds: Number.isFinite(best) ? best / 1000 : null, medianSeconds: verdict.medianMs === null ? null : verdict.medianMs / 1000 },
    });
  }
  state.session = null;
}

/** A state an API from before per-round secrets wrote: its running session goes on, its members' servers unregistered. */
function upgraded(state: NodeCheckState): NodeCheckState {
  state.sessions ??= state.session ? 1 : 0;
  if (state.session) {
    state.session.id ??= state.sessions;
    state.session.partners ??= [null, null];
    state.session.servers ??= {};
  }
  return state;
}
