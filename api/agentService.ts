// The API's side of the agent protocol (the job master itself is the workflow): registration,
// rendezvous, heartbeats and reports, over the store. Decisions are the pure functions in
// common/; this file persists them.
import { looksOutOfMemory } from '../common/oom.ts';
import { heartbeatRequest, type AgentEvent, type HeartbeatRequest, type HeartbeatResponse, type JoinRequest, type NodeReport, type NodeReportResponse, type RegisterRequest, type RoundStatus } from '../common/protocol.ts';
import { isTerminalPhase, type JobPhase } from '../common/phases.ts';
import { judgeRoundFailure, METRIC_CPU_PERCENT, METRIC_RSS_BYTES, METRIC_STEP, METRIC_THROUGHPUT, type Node, nodeLeasePrefix, applyRoundOpening, ROUND_CLOSED, ROUND_OPEN, settleRound, type Job, type NewMetric, type BeatWrite, type RendezvousMember, type RendezvousRound, type RoundRules, type Store } from '../store/index.ts';
import { roundDecisionDue } from '../common/roundDue.ts';
import { decideRoundOpening, roundSpec } from '../common/roundOpening.ts';
import { classifyFailure } from '../common/failureRules.ts';
import { nodeTokenScope, tokenMatches, type NodeTokenScope } from '../common/tokens.ts';
import { failureWeight, judgementData } from '../common/failureCulprit.ts';
import type { NamedNode } from './auth.ts';
import { HttpError, parseInput } from './errors.ts';
import { HangWatch } from './hangWatch.ts';
import { nextComputeWindow, StragglerWatch } from './stragglerWatch.ts';
import { NodeCheckCoordinator } from './nodeCheck.ts';
import type { NodeCheckRequest, NodeCheckResponse } from '../common/nodeCheckProtocol.ts';
import type { AgentServiceHooks } from './metrics.ts';
import { GroupCommit, type Settled } from './groupCommit.ts';

export class AgentService {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
    /** Metrics of what passes through this process; see api/metrics.ts. */
    private readonly hooks: AgentServiceHooks = {},
    /** The key node tokens are signed with (the operator token); unset, only job tokens pass. */
    private readonly signingKey?: string,
  ) {
    this.hangs = new HangWatch(store, now);
    this.stragglers = new StragglerWatch(store, now);
    this.checks = new NodeCheckCoordinator(store, now);
  }

  private readonly checks: NodeCheckCoordinator;

  /** Pre-flight node check poll; see api/nodeCheck.ts. */
  nodeCheck(job: Job, req: NodeCheckRequest): Promise<NodeCheckResponse> {
    return this.checks.poll(job, req);
  }

  /**
   * Reads of one job's row that arrive together share one store read (api/groupCommit.ts), as do
   * reads of member rows of one round: one query for the polls a closing round wakes, or for the
   * trainers of a step authorizing at once, instead of one per request. Each read starts after
   * every request it answers arrived, so none is answered from an older row than it would have
   * read alone.
   */
  private readonly jobReads = new GroupCommit<null, Job | undefined>(
    async (jobId, items) => {
      const job = await this.store.jobs.get(jobId);
      return items.map(() => ({ ok: true, value: job }));
    },
    { maxWeight: Number.POSITIVE_INFINITY, weight: () => 1 },
  );

  private readonly memberReads = new GroupCommit<{ jobId: string; round: number; node: number }, RendezvousMember | undefined>(
    async (_key, wanted) => {
      const { jobId, round } = wanted[0]!;
      const rows = await this.store.rendezvous.getMembers({ jobId, round }, wanted.map((w) => w.node));
      const byNode = new Map(rows.map((m) => [m.nodeId, m]));
      return wanted.map((w) => ({ ok: true, value: byNode.get(w.node) }));
    },
    { maxWeight: MEMBER_READ_BATCH_MAX, weight: () => 1 },
  );

  /** A node's member row of a round, read together with the others asked for at the same time. */
  private member(jobId: string, round: number, node: number): Promise<RendezvousMember | undefined> {
    return this.memberReads.submit(`${jobId} ${round}`, { jobId, round, node });
  }

  private readonly hangs: HangWatch;
  private readonly stragglers: StragglerWatch;

  /**
   * A job's heartbeats that arrive while its transaction runs go together into the next one
   * (api/groupCommit.ts): the job, its latest round and the beating nodes are read once for the
   * batch and each node's row is written, so N agents beating at once cost about one transaction
   * per round trip of the store and one row write each, instead of three reads and two writes each.
   */
  private readonly beats = new GroupCommit<HeartbeatCall, HeartbeatSeen>((jobId, calls) => this.recordHeartbeats(jobId, calls), {
    maxWeight: HEARTBEAT_BATCH_MAX,
    weight: () => 1,
  });

  private recordHeartbeats(jobId: string, calls: HeartbeatCall[]): Promise<Settled<HeartbeatSeen>[]> {
    return this.store.contendedTransaction(async (tx) => {
      const job = await tx.jobs.get(jobId);
      // Each call is let in (its token, then its body) as authorize and the route would, alone.
      const admitted = calls.map((call): Settled<{ job: Job; req: HeartbeatRequest }> => {
        try {
          const { job: admitted } = this.admit(job, jobId, call.token, call.ref);
          return { ok: true, value: { job: admitted, req: parseInput(heartbeatRequest, call.body, 'body') } };
        } catch (error) {
          return { ok: false, error };
        }
      });
      const live = job && !isTerminalPhase(job.phase as JobPhase);
      const beating = live ? admitted.flatMap((a) => (a.ok ? [a.value.req] : [])) : [];
      const latest = beating.length > 0 ? await tx.rendezvous.latestRound(jobId) : undefined;
      const rows = await tx.nodes.getMany(jobId, beating.map((b) => ({ nodeId: b.node, incarnation: b.incarnation })));
      const byKey = new Map(rows.map((n) => [`${n.nodeId}/${n.incarnation}`, n]));
      const now = this.now();
      const writes: BeatWrite[] = [];
      const samples: NewMetric[] = [];
      const seen = admitted.map((a): Settled<HeartbeatSeen> => {
        if (!a.ok) return a;
        const { job, req } = a.value;
        if (!live) return { ok: true, value: { job, req, reply: { action: 'stop', reason: `job ${job.id} is ${job.phase}` } } };
        const node = byKey.get(`${req.node}/${req.incarnation}`);
        if (!node) return { ok: false, error: new HttpError(404, 'node_not_found', `job ${jobId} has no node ${req.node} incarnation ${req.incarnation}`) };
        if (node.status === 'stopped') return { ok: true, value: { job, req, reply: { action: 'stop', reason: `node ${req.node} was removed from job ${job.id}` } } };
        const key = { jobId, nodeId: req.node, incarnation: req.incarnation };
        const moved = req.step !== null && req.step !== node.step;
        const checkpointing = req.checkpointing ? 1 : 0;
        const computeWindow = nextComputeWindow(node, req.step, req.computeSeconds);
        writes.push({
          nodeId: req.node,
          incarnation: req.incarnation,
          step: req.step,
          stepAt: moved ? now : null,
          checkpointing: checkpointing !== node.checkpointing ? checkpointing : null,
          computeWindow: computeWindow ?? null,
        });
        samples.push(...usageSamples(key, req), ...throughputSample(node, req, latest, now));
        const after = { ...node, ...(moved ? { stepAt: now } : {}), checkpointing };
        return { ok: true, value: { job, req, beat: { node: after, latest, computed: computeWindow !== undefined } } };
      });
      // In node order, so two replicas' batches take the rows' locks in one order (MySQL).
      writes.sort((a, b) => a.nodeId - b.nodeId || a.incarnation - b.incarnation);
      await tx.nodes.recordBeats(jobId, now, writes);
      await tx.metrics.record(samples);
      return seen;
    });
  }

  /**
   * Loads the job and checks the caller's token, in constant time: the job's token (its digest is
   * stored), or a node token of this run (common/tokens.ts nodeToken) — which, when the request
   * names a node or incarnation (`ref`, api/auth.ts namedNode), must be that node incarnation's,
   * and where it names a rank and round, a rank that node holds in that round.
   * 403 for an unknown job and a wrong token alike (the digest itself included), and for another
   * node's token.
   */
  async authorize(jobId: string, token: string | undefined, ref: NamedNode = {}): Promise<Job> {
    const { job, scope } = this.admit(await this.jobReads.submit(jobId, null), jobId, token, ref);
    if (!scope) return job;
    // A training process names its global rank and round: the rank must be one of the node's in
    // that round (group rank × nprocPerNode + local rank), or one node could report, say, every
    // rank's checkpoint and commit a step alone. One member row.
    if (ref.rank !== undefined && ref.round !== undefined) {
      const nproc = job.spec.spec.nprocPerNode;
      const member = Number.isInteger(ref.round) ? await this.member(job.id, ref.round, scope.node) : undefined;
      const holds = member?.incarnation === scope.incarnation && member.rank !== null;
      if (!holds || Math.floor(ref.rank / nproc) !== member.rank) {
        const ranks = holds ? `it holds ranks ${member.rank! * nproc}–${member.rank! * nproc + nproc - 1} there` : 'it has no rank there';
        throw new HttpError(403, 'forbidden', `the token of node ${scope.node} incarnation ${scope.incarnation} cannot act as rank ${ref.rank} in round ${ref.round}: ${ranks}`);
      }
    }
    return job;
  }

  /**
   * authorize's token check on a job row already read (`job`, undefined when there is none): the
   * job's token lets in with no scope (null); a node token of this run naming no other node
   * incarnation than its own lets in with its scope; anything else is the one 403.
   */
  private admit(job: Job | undefined, jobId: string, token: string | undefined, ref: NamedNode): { job: Job; scope: NodeTokenScope | null } {
    if (job && tokenMatches(token, job.tokenDigest)) return { job, scope: null };
    const scope = job ? nodeTokenScope(token, this.signingKey, job.tokenDigest) : undefined;
    // An unknown job and a token that does not open the job get one answer: a caller learns
    // nothing about which jobs exist without a token of one.
    if (!job || !scope) throw new HttpError(403, 'forbidden', `no job ${JSON.stringify(jobId)} that this token opens (Authorization: Bearer <ROVER_TOKEN of a node of the job>)`);
    const named = { node: ref.node ?? scope.node, incarnation: ref.incarnation ?? scope.incarnation };
    if (named.node !== scope.node || named.incarnation !== scope.incarnation) {
      throw new HttpError(403, 'forbidden', `the token of node ${scope.node} incarnation ${scope.incarnation} cannot act as node ${named.node} incarnation ${named.incarnation}`);
    }
    return { job, scope };
  }

  async register(job: Job, req: RegisterRequest): Promise<void> {
    const key = { jobId: job.id, nodeId: req.node, incarnation: req.incarnation };
    await this.store.transaction(async (tx) => {
      const node = await tx.nodes.get(key);
      if (!node) throw new HttpError(404, 'node_not_found', `job ${job.id} has no node ${req.node} incarnation ${req.incarnation}`);
      const now = this.now();
      await tx.nodes.update(key, { status: 'running', pid: req.pid, host: req.host, startedAt: now, lastHeartbeatAt: now });
      await tx.nodeEvents.append({ ...eventKey(key), kind: 'node_registered', data: { pid: req.pid, host: req.host } });
    });
  }

  /**
   * Joins the open round, or opens the next one when the node is not part of the latest. The join
   * is the change that may complete the round, so it decides the round (right after its
   * transaction, which then commits the member count the decision reads): polls only read.
   * A burst of first joins all try to open the round: on MySQL the losers must see the winner's
   * round (READ COMMITTED) and may be deadlock victims, so the join is a contended transaction,
   * rerun until it succeeds (it is idempotent).
   */
  async join(job: Job, req: JoinRequest): Promise<number> {
    const { round, due } = await this.store.contendedTransaction(async (tx) => {
      // Decided again when the round the read found open closes before the join locks it (a poll
      // settled it in between): the joiner then opens the next round instead of waiting, unranked,
      // in a world that formed without it. Each pass follows another round's close.
      for (;;) {
        const latest = await tx.rendezvous.latestRound(job.id);
        const [same] = latest?.status === ROUND_CLOSED ? await tx.rendezvous.getMembers({ jobId: job.id, round: latest.round }, [req.node]) : [];
        const trigger = { kind: 'join', node: req.node, incarnation: req.incarnation, memberOfLatest: same?.incarnation === req.incarnation } as const;
        const decision = decideRoundOpening(latest, trigger, roundSpec(job.spec.spec));
        const round = (await applyRoundOpening(tx, job.id, decision))!;
        // A member of the latest closed round asks again (its reply was lost): nothing to join.
        if (latest?.status === ROUND_CLOSED && round === latest.round) return { round, due: false };
        const member = await tx.rendezvous.join({ jobId: job.id, round, nodeId: req.node, incarnation: req.incarnation, host: req.host, freePort: req.freePort });
        if (!member) continue;
        const joined = await tx.rendezvous.getRound({ jobId: job.id, round });
        return { round, due: this.decisionDue(job, joined) };
      }
    });
    if (due) await this.decide(job, round);
    return round;
  }

  /** Whether the round policy has anything to decide about this round now, by its row alone (O(1)). */
  private decisionDue(job: Job, round: RendezvousRound | undefined): boolean {
    return round?.status === ROUND_OPEN && roundDecisionDue(round, roundRules(job), this.now());
  }

  /**
   * Where the round stands for this node: O(1) reads, outside any transaction. The round policy
   * runs only when the round row says a deadline passed (last call, join timeout) or it filled.
   */
  async roundStatus(job: Job, round: number, node: number, incarnation: number): Promise<RoundStatus> {
    const current = isTerminalPhase(job.phase as JobPhase) ? undefined : await this.roundRow(job, round);
    return this.roundAnswer(job, current, round, node, incarnation);
  }

  /**
   * What a long poll of a round re-reads (shared by every waiting poll of the round in a process,
   * api/longPoll.ts): the job's row and the round's, the round policy run first when due. O(1).
   * `settled`: a poll would now answer anything but 'open' (the job ended, the round closed or failed).
   */
  async roundRows(job: Job, round: number): Promise<{ job: Job | undefined; round: RendezvousRound | undefined; settled: boolean }> {
    const current = await this.store.jobs.get(job.id);
    if (!current || isTerminalPhase(current.phase as JobPhase)) return { job: current, round: undefined, settled: true };
    const row = await this.roundRow(current, round);
    return { job: current, round: row, settled: row?.status !== ROUND_OPEN };
  }

  /**
   * This node's answer from the job's and the round's rows already read: its own member row is the
   * one read left (a thousand polls woken by one round's closing cost a thousand point reads).
   */
  async roundAnswer(job: Job, current: RendezvousRound | undefined, round: number, node: number, incarnation: number): Promise<RoundStatus> {
    if (isTerminalPhase(job.phase as JobPhase)) {
      return { status: 'failed', round, reason: `job ${job.id} is ${job.phase}${job.reason ? `: ${job.reason}` : ''}` };
    }
    if (!current) throw new HttpError(404, 'round_not_found', `job ${job.id} has no rendezvous round ${round}`);
    if (current.status === ROUND_OPEN) return { status: 'open', round };
    if (current.status !== ROUND_CLOSED) return { status: 'failed', round, reason: `rendezvous round ${round} failed` };
    const member = await this.member(job.id, round, node);
    if (!member || member.incarnation !== incarnation || member.rank === null) return { status: 'excluded', round };
    return {
      status: 'closed',
      round,
      groupRank: member.rank,
      nodes: current.nodeCount ?? 0,
      masterAddr: current.masterAddr ?? '127.0.0.1',
      masterPort: current.masterPort ?? 0,
    };
  }

  /** The round's row, after the round policy ran if the row says it is due (a deadline, a full round). */
  private async roundRow(job: Job, round: number): Promise<RendezvousRound | undefined> {
    const key = { jobId: job.id, round };
    const current = await this.store.rendezvous.getRound(key);
    if (!this.decisionDue(job, current)) return current;
    await this.decide(job, round);
    return this.store.rendezvous.getRound(key);
  }

  /** Applies the round policy (it reads every member): once per change, see decisionDue. */
  private async decide(job: Job, round: number): Promise<void> {
    const settled = await this.store.transaction((tx) => settleRound(tx, { jobId: job.id, round }, roundRules(job), this.now()));
    if (settled.status === 'closed') this.hooks.roundClosed?.(job.id, Math.max(0, this.now() - settled.openedAt) / 1000);
    this.hooks.roundDecided?.(job.id, round);
  }

  /**
   * One agent heartbeat, its body not yet parsed: the job's row is read, the token checked (as
   * authorize does) and the body validated in the job's batch (recordHeartbeats), so a beat does no
   * store work of its own. Answers the job and the parsed request with the reply; throws the 403,
   * 400 or 404 HttpError a lone request would get. `queued(true/false)` brackets the wait for the
   * batch: a beat waiting in it does not count against the in-flight limit (api/overload.ts
   * setWaiting).
   */
  async heartbeat(call: HeartbeatCall, queued?: (waiting: boolean) => void): Promise<{ job: Job; req: HeartbeatRequest; reply: HeartbeatResponse }> {
    queued?.(true);
    let seen: HeartbeatSeen;
    try {
      seen = await this.beats.submit(call.jobId, call);
    } finally {
      queued?.(false);
    }
    const { job, req } = seen;
    if ('reply' in seen) return { job, req, reply: seen.reply };
    const { node, latest, computed } = seen.beat;
    this.hooks.heartbeat?.(job.id, req.step, this.now());
    if (computed) await this.stragglers.check(job);
    const hang = await this.hangs.check(job, node, req.processes.length > 0, latest);
    const reply = await this.roundReply(job, req, latest);
    if (reply.action === 'stop') return { job, req, reply };
    // A node that passed its check hears here while a check round needs it as a peer.
    const peer = await this.checks.wantsPeer(job, req.node, req.incarnation);
    return { job, req, reply: { ...reply, ...(hang !== undefined && { captureStacks: hang }), ...(peer && { nodeCheck: true }) } };
  }

  /**
   * The answer to a held heartbeat (api/agentRoutes.ts) once a newer round than the node's was
   * read (`latest`, shared by every held heartbeat of the job in this process): restart if the
   * round wants this node; its member row is the one read.
   */
  heldHeartbeatReply(job: Job, req: HeartbeatRequest, latest: RendezvousRound | undefined): Promise<HeartbeatResponse> {
    return this.roundReply(job, req, latest);
  }

  /** The job's latest round: what held heartbeats wait on. O(1). */
  latestRound(job: Job): Promise<RendezvousRound | undefined> {
    return this.store.rendezvous.latestRound(job.id);
  }

  /** Whether a newer round wants this node: its own member row, never the member list. */
  private async roundReply(job: Job, req: HeartbeatRequest, latest: RendezvousRound | undefined): Promise<HeartbeatResponse> {
    if (!latest || latest.round <= req.round) return { action: 'none' };
    if (latest.status === ROUND_OPEN) return { action: 'restart', round: latest.round };
    const member = await this.member(job.id, latest.round, req.node);
    const ranked = member?.incarnation === req.incarnation && member.rank !== null;
    return ranked ? { action: 'restart', round: latest.round } : { action: 'none' };
  }

  /** Evidence an agent gathered (stack dumps), into the job's event bus. */
  recordAgentEvent(job: Job, event: AgentEvent): Promise<void> {
    return this.hangs.recordAgentEvent(job, event);
  }

  /**
   * Records what an agent observed. A process failure is judged against its round's culprit
   * (common/failureCulprit.ts): the culprit is charged to its node's restart budget and opens the
   * next round; a consequence of another node's failure costs its node nothing.
   */
  async report(job: Job, req: NodeReport): Promise<NodeReportResponse> {
    const key = { jobId: job.id, nodeId: req.node, incarnation: req.incarnation };
    const reported = await this.store.transaction(async (tx): Promise<{ answer: NodeReportResponse; opened: boolean }> => {
      const node = await tx.nodes.get(key);
      if (!node) throw new HttpError(404, 'node_not_found', `job ${job.id} has no node ${req.node} incarnation ${req.incarnation}`);
      const exit = { exitCode: req.exitCode ?? null, exitSignal: req.signal ?? null, exitReason: req.reason ?? req.stderrTail ?? null };
      const now = this.now();
      const { node: _n, incarnation: _i, kind, ...rest } = req;
      // Past its memory limit (local: prlimit) a process dies with MemoryError: the OOM path.
      const oomKilled = kind !== 'node_succeeded' && looksOutOfMemory(req.stderrTail);
      const data = { ...rest, ...(oomKilled && { oomKilled: true }) };
      if (kind === 'node_succeeded') await tx.nodes.update(key, { status: 'succeeded', endedAt: now, exitCode: 0, ...(req.step != null && { step: req.step }) });
      if (kind === 'node_failed') {
        await tx.nodes.update(key, { status: 'failed', endedAt: now, ...exit });
        await tx.shards.releaseByPrefix(job.id, nodeLeasePrefix(req.node, req.incarnation));
      }
      if (kind !== 'process_failed') {
        await tx.nodeEvents.append({ ...eventKey(key), kind, data });
        return { answer: {}, opened: false };
      }
      await tx.nodes.update(key, exit);
      // Classified once, here where the exit is seen; the job master reads the class from the event.
      const spec = job.spec;
      const facts = { exitCode: req.exitCode ?? null, signal: req.signal ?? null, oomKilled, stderrTail: req.stderrTail ?? '' };
      const failure = classifyFailure(facts, spec.spec.faultTolerance.failureRules ?? []);
      const reported = { node: req.node, incarnation: req.incarnation, weight: failureWeight(facts, failure), at: now, exitedAt: req.exitedAt ?? null };
      const judged = await judgeRoundFailure(tx, job.id, req.round, reported);
      let failures = node.processRestarts;
      if (judged.role === 'culprit') {
        failures = (await tx.nodes.chargeProcessRestart(key, 1)) ?? failures + 1;
        this.hooks.processFailed?.(job.id, failure.class);
      }
      const rank = node.rank === null || req.localRank === undefined ? null : node.rank * spec.spec.nprocPerNode + req.localRank;
      await tx.nodeEvents.append({ ...eventKey(key), kind, data: { ...data, failure, failures, ...judgementData(judged) }, rank });
      // Peers restart with this node: the next round, if they are still in a closed one.
      const latest = await tx.rendezvous.latestRound(job.id);
      const trigger = { kind: 'process_failed', node: req.node, localRank: req.localRank, signal: req.signal ?? null, exitCode: req.exitCode ?? null } as const;
      const opened = await applyRoundOpening(tx, job.id, decideRoundOpening(latest, trigger, roundSpec(job.spec.spec)));
      return { answer: { charged: judged.role === 'culprit', failures }, opened: opened !== undefined && opened > (latest?.round ?? 0) };
    });
    // After the commit, so the held heartbeats' read sees the round: the peers hear of it at once.
    if (reported.opened) this.hooks.roundOpened?.(job.id);
    return reported.answer;
  }
}

/** A heartbeat as it arrived: the job it names, its bearer token, the node it names, its unparsed body. */
export interface HeartbeatCall {
  jobId: string;
  token: string | undefined;
  ref: NamedNode;
  body: unknown;
}

/**
 * What a heartbeat's batch did for it: the reply when it ends there (the job is over, the node
 * was removed), else its node row as written (stepAt and checkpointing as they now stand), the
 * job's latest round, and whether it brought a new compute time (the straggler check's cue).
 */
type HeartbeatSeen = { job: Job; req: HeartbeatRequest } & (
  | { reply: HeartbeatResponse }
  | { beat: { node: Node; latest: RendezvousRound | undefined; computed: boolean } }
);

/**
 * Rank 0's heartbeats measure the job's throughput for the Brain's running plan: steps/s since
 * its previous heartbeat × nodes in the round (samples/s up to the per-node batch size).
 */
function throughputSample(node: Node, req: HeartbeatRequest, round: RendezvousRound | undefined, now: number): NewMetric[] {
  if (node.rank !== 0 || req.step === null || node.step === null || node.lastHeartbeatAt === null || req.step <= node.step) return [];
  const seconds = (now - node.lastHeartbeatAt) / 1000;
  if (seconds <= 0 || !round || round.round !== req.round || round.status !== ROUND_CLOSED || !round.nodeCount) return [];
  const value = ((req.step - node.step) / seconds) * round.nodeCount;
  return [{ jobId: node.jobId, nodeId: node.nodeId, incarnation: node.incarnation, name: METRIC_THROUGHPUT, value, labels: { nodes: String(round.nodeCount) } }];
}

/** Member rows read by one query at most (an IN list of node ids). */
const MEMBER_READ_BATCH_MAX = 500;

/** Heartbeats in one transaction at most: bounds a batch's lock time on MySQL. */
const HEARTBEAT_BATCH_MAX = 500;

/** The Brain's per-node usage samples from one heartbeat: memory and cpu summed over the node's processes, and its step. */
function usageSamples(key: { jobId: string; nodeId: number; incarnation: number }, req: HeartbeatRequest): NewMetric[] {
  const at = { jobId: key.jobId, nodeId: key.nodeId, incarnation: key.incarnation };
  const samples: NewMetric[] = [];
  if (req.processes.length > 0) {
    samples.push({ ...at, name: METRIC_RSS_BYTES, value: req.processes.reduce((sum, p) => sum + p.rssBytes, 0) });
    samples.push({ ...at, name: METRIC_CPU_PERCENT, value: req.processes.reduce((sum, p) => sum + p.cpuPercent, 0) });
  }
  if (req.step !== null) samples.push({ ...at, name: METRIC_STEP, value: req.step });
  return samples;
}

/** The job spec's rendezvous rules (the round row holds its own min and max). */
function roundRules(job: Job): RoundRules {
  const spec = job.spec.spec;
  return { unit: spec.nodes.unit, lastCallTimeoutMs: spec.rendezvous.lastCallTimeout, joinTimeoutMs: spec.rendezvous.joinTimeout };
}

function eventKey(key: { jobId: string; nodeId: number; incarnation: number }) {
  return { jobId: key.jobId, nodeId: key.nodeId, incarnation: key.incarnation };
}

