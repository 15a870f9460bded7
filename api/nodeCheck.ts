// Pre-flight node check, coordinated by the API. Agents poll with their exchange server's
// address; once every live node without a verdict is ready (or spec.diagnosis.timeout passed),
// a session runs round 1 (neighbours) and round 2 (slowest with fastest); a round ends when all
// its members reported or the timeout passed (silence counts as failure). Results and verdicts go
// to the event bus as node_check events; the job workflow acts on the verdicts. A lone node (a
// relaunched incarnation) exchanges with a node that already passed, whose server stays open.
// Session state is in memory: after an API restart agents re-announce and the check starts over.
import { nodeCheckVerdict, pairRound1, pairRound2, type CheckResult, type Pair } from '../common/diagnosisNodeCheck.ts';
import { nodeCheckEnabled, type NodeCheckRequest, type NodeCheckResponse, type NodeCheckVerdictKind } from '../common/nodeCheckProtocol.ts';
import type { JobSpec } from '../common/spec/index.ts';
import type { Job, Store } from '../store/index.ts';

interface Member {
  node: number;
  incarnation: number;
  host: string;
  port: number;
  readyAt: number;
}

interface Session {
  members: Member[];
  round: 1 | 2;
  roundStartedAt: number;
  pairs: Pair[];
  /** Per round: node → elapsed ms, null when failed. */
  results: [Map<number, number | null>, Map<number, number | null>];
}

interface JobCheck {
  ready: Map<number, Member>;
  session: Session | null;
  verdicts: Map<string, { verdict: NodeCheckVerdictKind; hold: boolean }>;
  /** Members that passed: partners for a lone node. */
  passed: Member[];
}

const LIVE = ['pending', 'launching', 'running'];
const key = (node: number, incarnation: number) => `${node}/${incarnation}`;
/** Results of the session's current round. */
const roundResults = (s: Session) => (s.round === 1 ? s.results[0] : s.results[1]);

export class NodeCheckCoordinator {
  private readonly jobs = new Map<string, JobCheck>();
  /** One poll at a time per API process keeps the session transitions simple. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  poll(job: Job, req: NodeCheckRequest): Promise<NodeCheckResponse> {
    const next = this.queue.then(() => this.pollNow(job, req));
    this.queue = next.catch(() => {});
    return next;
  }

  private async pollNow(job: Job, req: NodeCheckRequest): Promise<NodeCheckResponse> {
    const spec = (job.spec as JobSpec).spec;
    if (!nodeCheckEnabled(spec.diagnosis?.nodeCheck, spec.nodes.max)) return { action: 'skip' };
    let state = this.jobs.get(job.id);
    if (!state) this.jobs.set(job.id, (state = { ready: new Map(), session: null, verdicts: new Map(), passed: [] }));
    const done = state.verdicts.get(key(req.node, req.incarnation));
    if (done) return { action: 'done', ...done };
    const known = state.ready.get(req.node);
    if (!known || known.incarnation <= req.incarnation) {
      const same = known?.incarnation === req.incarnation;
      state.ready.set(req.node, { node: req.node, incarnation: req.incarnation, host: req.host, port: req.port, readyAt: same ? known.readyAt : this.now() });
    }
    const session = state.session;
    const inSession = session?.members.some((m) => m.node === req.node && m.incarnation === req.incarnation) ?? false;
    if (session && inSession && req.result && req.result.round === session.round && !roundResults(session).has(req.node)) {
      roundResults(session).set(req.node, req.result.ok ? req.result.seconds * 1000 : null);
      await this.store.nodeEvents.append({
        jobId: job.id,
        nodeId: req.node,
        incarnation: req.incarnation,
        kind: 'node_check',
        source: 'agent',
        data: { round: req.result.round, ok: req.result.ok, seconds: req.result.seconds, ...(req.result.error && { error: req.result.error }) },
      });
    }
    await this.advance(job, state);
    const verdict = state.verdicts.get(key(req.node, req.incarnation));
    if (verdict) return { action: 'done', ...verdict };
    const current = state.session;
    if (!current || !current.members.some((m) => m.node === req.node && m.incarnation === req.incarnation)) return { action: 'wait' };
    if (roundResults(current).has(req.node)) return { action: 'wait' };
    return { action: 'probe', round: current.round, probeBytes: spec.diagnosis?.probeBytes ?? 1_048_576, peers: this.peersOf(state, current, req.node) };
  }

  private peersOf(state: JobCheck, session: Session, node: number) {
    const ids = session.pairs.filter((p) => p.includes(node)).map((p) => (p[0] === node ? p[1] : p[0]));
    const peers = ids.map((id) => session.members.find((m) => m.node === id)!);
    if (peers.length === 0) {
      // Alone: a node that passed earlier (its server is still open), a different one per round.
      const others = state.passed.filter((m) => m.node !== node);
      const partner = others[(session.round - 1) % Math.max(1, others.length)];
      if (partner) peers.push(partner);
    }
    return peers.map((m) => ({ node: m.node, host: m.host, port: m.port }));
  }

  private async advance(job: Job, state: JobCheck): Promise<void> {
    const spec = (job.spec as JobSpec).spec;
    const timeout = spec.diagnosis?.timeout ?? 30_000;
    const now = this.now();
    if (!state.session) {
      const pending = [...state.ready.values()].filter((m) => !state.verdicts.has(key(m.node, m.incarnation)));
      if (pending.length === 0) return;
      const live = await this.store.nodes.listByJob(job.id, { statuses: LIVE });
      const expected = live.filter((n) => !state.verdicts.has(key(n.nodeId, n.incarnation)));
      const allIn = expected.every((n) => pending.some((m) => m.node === n.nodeId && m.incarnation === n.incarnation));
      const firstReady = Math.min(...pending.map((m) => m.readyAt));
      // Nodes launch one by one: the first session also waits for spec.nodes.initial of them.
      const want = state.verdicts.size === 0 ? spec.nodes.initial : 0;
      if ((!allIn || pending.length < want) && now - firstReady < timeout) return;
      state.session = { members: pending, round: 1, roundStartedAt: now, pairs: pairRound1(pending.map((m) => m.node)), results: [new Map(), new Map()] };
      return;
    }
    const session = state.session;
    const results = roundResults(session);
    const complete = session.members.every((m) => results.has(m.node));
    if (!complete && now - session.roundStartedAt < timeout) return;
    const round: CheckResult[] = session.members.map((m) => ({ node: m.node, elapsedMs: results.get(m.node) ?? null }));
    if (session.round === 1) {
      session.round = 2;
      session.roundStartedAt = now;
      session.pairs = pairRound2(round);
      return;
    }
    const round1: CheckResult[] = session.members.map((m) => ({ node: m.node, elapsedMs: session.results[0].get(m.node) ?? null }));
    const verdict = nodeCheckVerdict(round1, round);
    let kept = session.members.length - verdict.faulty.length;
    for (const m of session.members) {
      const faulty = verdict.faulty.includes(m.node);
      const straggler = !faulty && verdict.stragglers.includes(m.node);
      // Same rule as the workflow's: exclude while spec.nodes.min still holds.
      const exclude = straggler && spec.diagnosis?.excludeStragglers === true && kept - 1 >= spec.nodes.min;
      if (exclude) kept -= 1;
      const kind: NodeCheckVerdictKind = faulty ? 'faulty' : straggler ? 'straggler' : 'ok';
      const best = Math.min(...[session.results[0].get(m.node), session.results[1].get(m.node)].map((v) => v ?? Infinity));
      state.verdicts.set(key(m.node, m.incarnation), { verdict: kind, hold: faulty || exclude });
      if (!faulty) state.passed.push(m);
      await this.store.nodeEvents.append({
        jobId: job.id,
        nodeId: m.node,
        incarnation: m.incarnation,
        kind: 'node_check',
        source: 'api',
        data: {
          verdict: kind,
          exclude,
          bestSeconds: Number.isFinite(best) ? best / 1000 : null,
          medianSeconds: verdict.medianMs === null ? null : verdict.medianMs / 1000,
        },
      });
    }
    state.session = null;
  }
}
