// The node-check state machine: exchange servers and pairing secrets are per round, a peer list
// carries only the current round's secrets, and a node that passed is a peer only while a round
// needs it (partnersWanted), then done.
import { describe, expect, it } from 'vitest';
import type { NodeCheckRequest, NodeCheckResponse } from './nodeCheckProtocol.ts';
import { emptyNodeCheckState, partnersWanted, SERVE_WINDOW, stepNodeCheck, type NodeCheckEvent, type NodeCheckRules } from './nodeCheckSession.ts';

const RULES: NodeCheckRules = { timeoutMs: 20_000, probeBytes: 1024, initialNodes: 4, minNodes: 2, excludeStragglers: false };

/** Node n's secret for a round of a session: 32 hex characters, different for each. */
const secretOf = (node: number, round: number, session = 1) => (session * 64 + node * 4 + round).toString(16).padStart(4, '0').repeat(8);

/** One job's check, polled by hand. */
class Check {
  constructor(readonly rules = RULES) {}
  state = emptyNodeCheckState();
  now = 1_000_000;
  live = [0, 1, 2, 3].map((node) => ({ node, incarnation: 0 }));

  poll(node: number, extra: Partial<NodeCheckRequest> = {}, incarnation = 0): NodeCheckResponse {
    const req: NodeCheckRequest = { node, incarnation, host: `h${node}`, ...extra };
    const step = stepNodeCheck(this.state, req, this.rules, this.now, () => this.live);
    this.state = step.state;
    return step.response;
  }

  /** Node n polls with the server it opened for `round` of `session`. */
  serving(node: number, session: number, round: number, incarnation = 0): NodeCheckResponse {
    return this.poll(node, { serving: { session, round, port: 9000 + node, secret: secretOf(node, round, session) } }, incarnation);
  }

  report(node: number, round: number, ok = true, incarnation = 0, seconds = 0.1): NodeCheckResponse {
    return this.poll(node, { result: { round, ok, seconds } }, incarnation);
  }
}

const peersIn = (answer: NodeCheckResponse) => (answer.action === 'probe' ? answer.peers : []);

describe('the node-check session', () => {
  it("asks each member to serve each round and hands out only the current round's secrets", async () => {
    const check = new Check();
    const nodes = [0, 1, 2, 3];
    for (const n of nodes) expect(check.poll(n)).toEqual(n < 3 ? { action: 'wait' } : { action: 'serve', session: 1, round: 1 });
    for (const n of nodes.slice(0, 3)) expect(check.poll(n)).toEqual({ action: 'serve', session: 1, round: 1 });
    // Registered for round 1 one by one: a member is handed its peers once they all registered.
    expect(check.serving(0, 1, 1)).toEqual({ action: 'wait' });
    for (const n of [1, 2, 3]) check.serving(n, 1, 1);
    const round1 = nodes.map((n) => check.poll(n));
    expect(round1.map((a) => a.action)).toEqual(['probe', 'probe', 'probe', 'probe']);
    for (const a of round1) for (const p of peersIn(a)) expect(p).toEqual({ node: p.node, host: `h${p.node}`, port: 9000 + p.node, secret: secretOf(p.node, 1) });
    for (const n of nodes) check.report(n, 1);

    // Round 2: every member serves again; a server registered for round 1 does not count.
    for (const n of nodes) expect(check.serving(n, 1, 1)).toEqual({ action: 'serve', session: 1, round: 2 });
    expect(Object.keys(check.state.session!.servers)).toEqual([]);
    const round2 = nodes.map((n) => check.serving(n, 1, 2));
    // Pairs 0-3 and 1-2 (equal times): the later of each pair is handed the earlier's server.
    expect(round2.map((a) => a.action)).toEqual(['wait', 'wait', 'probe', 'probe']);
    const handed = nodes.map((n) => check.poll(n)).flatMap(peersIn);
    expect(handed.length).toBeGreaterThan(0);
    for (const p of handed) {
      expect(p.secret).toBe(secretOf(p.node, 2));
      expect(p.secret).not.toBe(secretOf(p.node, 1));
    }
    for (const n of nodes) check.report(n, 2);
    expect(nodes.map((n) => check.poll(n))).toEqual(nodes.map(() => ({ action: 'done', verdict: 'ok', hold: false })));
    expect(check.state.session).toBeNull();
  });

  it('waits for a silent peer only part of the round, then probes without it, and fails the silent one', async () => {
    const check = new Check();
    for (const n of [0, 1, 2, 3]) check.poll(n);
    for (const n of [0, 1, 2]) check.serving(n, 1, 1);
    // Round 1 pairs 0-1 and 2-3: node 2 waits for 3's server, 0 and 1 do not.
    expect(check.poll(2)).toEqual({ action: 'wait' });
    expect(peersIn(check.poll(0)).map((p) => p.node)).toEqual([1]);
    check.now += RULES.timeoutMs * SERVE_WINDOW;
    expect(check.poll(2)).toEqual({ action: 'probe', round: 1, probeBytes: 1024, peers: [] });
    for (const n of [0, 1, 2]) check.report(n, 1);
    // Round 1 ends at its timeout without node 3's result.
    check.now += RULES.timeoutMs;
    expect([0, 1, 2].map((n) => check.poll(n))).toEqual([0, 1, 2].map(() => ({ action: 'serve', session: 1, round: 2 })));
    for (const n of [0, 1, 2]) check.serving(n, 1, 2);
    for (const n of [0, 1, 2]) check.report(n, 2);
    check.now += RULES.timeoutMs;
    expect(check.poll(3)).toEqual({ action: 'done', verdict: 'faulty', hold: true });
    expect(check.poll(0)).toEqual({ action: 'done', verdict: 'ok', hold: false });
  });

  it('pairs a relaunched node with a live node that passed, wanted only while its round needs it', async () => {
    const check = new Check();
    const nodes = [0, 1, 2, 3];
    for (const n of nodes) check.poll(n);
    for (const round of [1, 2]) {
      for (const n of nodes) check.serving(n, 1, round);
      for (const n of nodes) check.report(n, round, n !== 1);
    }
    expect(check.poll(1)).toEqual({ action: 'done', verdict: 'faulty', hold: true });
    expect(check.state.passed.map((m) => m.node)).toEqual([0, 2, 3]);
    // Node 1 is relaunched as incarnation 1; node 3 was lost meanwhile, so it cannot help.
    check.live = [{ node: 0, incarnation: 0 }, { node: 1, incarnation: 1 }, { node: 2, incarnation: 0 }];
    expect(partnersWanted(check.state)).toEqual([]);
    expect(check.poll(1, {}, 1)).toEqual({ action: 'serve', session: 2, round: 1 });
    expect(partnersWanted(check.state)).toEqual(['0/0']);
    expect(check.poll(2)).toEqual({ action: 'done', verdict: 'ok', hold: false });
    // Node 0 heard it in its heartbeat: it serves round 1 with a fresh server and secret.
    expect(check.poll(0)).toEqual({ action: 'serve', session: 2, round: 1 });
    expect(check.serving(0, 2, 1)).toEqual({ action: 'wait' });
    expect(check.serving(1, 2, 1, 1)).toEqual({ action: 'probe', round: 1, probeBytes: 1024, peers: [{ node: 0, host: 'h0', port: 9000, secret: secretOf(0, 1, 2) }] });
    check.report(1, 1, true, 1);
    // Round 2 wants node 2 instead: node 0's part is over.
    expect(partnersWanted(check.state)).toEqual(['2/0']);
    expect(check.serving(0, 2, 1)).toEqual({ action: 'done', verdict: 'ok', hold: false });
    expect(check.poll(2)).toEqual({ action: 'serve', session: 2, round: 2 });
    check.serving(2, 2, 2);
    expect(check.serving(1, 2, 2, 1)).toEqual({ action: 'probe', round: 2, probeBytes: 1024, peers: [{ node: 2, host: 'h2', port: 9002, secret: secretOf(2, 2, 2) }] });
    check.report(1, 2, true, 1);
    expect(check.poll(1, {}, 1)).toEqual({ action: 'done', verdict: 'ok', hold: false });
    expect(partnersWanted(check.state)).toEqual([]);
    expect(check.poll(2)).toEqual({ action: 'done', verdict: 'ok', hold: false });
  });

  it("ends a partner's part when the lone member goes silent (the round's timeout, on the partner's polls)", async () => {
    const check = new Check({ ...RULES, initialNodes: 1 });
    check.live = [{ node: 0, incarnation: 0 }];
    check.poll(0);
    for (const round of [1, 2]) {
      check.serving(0, 1, round);
      check.report(0, round);
    }
    expect(check.poll(0)).toEqual({ action: 'done', verdict: 'ok', hold: false });
    check.live = [{ node: 0, incarnation: 0 }, { node: 1, incarnation: 0 }];
    expect(check.poll(1)).toEqual({ action: 'serve', session: 2, round: 1 });
    expect(check.serving(0, 2, 1)).toEqual({ action: 'wait' });
    check.now += 2 * RULES.timeoutMs;
    // Round 1 times out into round 2 (node 0 again, the only one that passed), then round 2 ends.
    expect(check.poll(0)).toEqual({ action: 'serve', session: 2, round: 2 });
    check.now += RULES.timeoutMs;
    expect(check.poll(0)).toEqual({ action: 'done', verdict: 'ok', hold: false });
    expect(check.poll(1)).toEqual({ action: 'done', verdict: 'faulty', hold: true });
  });

  it('excludes stragglers only with spec.diagnosis.excludeStragglers and while spec.nodes.min holds, and says so in the event', async () => {
    // Six nodes; the slow ones take 1 s against the others' 0.1 s (above 2× the median).
    const nodes = [0, 1, 2, 3, 4, 5];
    const table = [
      { excludeStragglers: false, minNodes: 2, slow: [5], excluded: [] },
      { excludeStragglers: true, minNodes: 2, slow: [5], excluded: [5] },
      { excludeStragglers: true, minNodes: 6, slow: [5], excluded: [] },
      { excludeStragglers: true, minNodes: 4, slow: [4, 5], excluded: [4, 5] },
      { excludeStragglers: true, minNodes: 5, slow: [4, 5], excluded: [4] },
    ];
    for (const { excludeStragglers, minNodes, slow, excluded } of table) {
      const check = new Check({ ...RULES, initialNodes: nodes.length, excludeStragglers, minNodes });
      check.live = nodes.map((node) => ({ node, incarnation: 0 }));
      const events: NodeCheckEvent[] = [];
      for (const n of nodes) check.poll(n);
      for (const round of [1, 2]) {
        for (const n of nodes) {
          const req: NodeCheckRequest = { node: n, incarnation: 0, host: `h${n}`, result: { round, ok: true, seconds: slow.includes(n) ? 1 : 0.1 } };
          const step = stepNodeCheck(check.state, req, check.rules, check.now, () => check.live);
          check.state = step.state;
          events.push(...step.events);
        }
      }
      const verdicts = events.flatMap((e) => ('verdict' in e.data ? [{ node: e.nodeId, verdict: e.data.verdict, exclude: e.data.exclude }] : []));
      expect(verdicts).toEqual(nodes.map((node) => ({ node, verdict: slow.includes(node) ? 'straggler' : 'ok', exclude: excluded.includes(node) })));
      for (const n of nodes) expect(check.poll(n)).toMatchObject({ action: 'done', hold: excluded.includes(n) });
    }
  });

  it('registers an agent from before per-round secrets with its one server, and never asks it to serve', async () => {
    const check = new Check();
    const legacy = (n: number) => ({ port: 7000 + n, secret: secretOf(n, 0, 0) });
    const answers = [0, 1, 2, 3].map((n) => (n === 2 ? check.poll(n, legacy(n)) : check.poll(n)));
    expect(answers.at(-1)).toEqual({ action: 'serve', session: 1, round: 1 });
    expect(check.poll(2, legacy(2))).toEqual({ action: 'wait' });
    for (const n of [0, 1, 3]) check.serving(n, 1, 1);
    expect(peersIn(check.poll(3)).map((p) => [p.node, p.port, p.secret])).toEqual([[2, 7002, secretOf(2, 0, 0)]]);
    expect(peersIn(check.poll(2, legacy(2))).map((p) => p.secret)).toEqual([secretOf(3, 1)]);
    expect(check.state.ready['2']).toMatchObject({ port: 7002 });
    expect(check.state.ready['3']).toMatchObject({ port: 9003 });
  });
});
