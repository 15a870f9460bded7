// The master service behind the agent endpoints: registration, rendezvous, heartbeats and
// reports, over the store. Decisions are the pure functions in common/; this file persists them.
import type { HeartbeatRequest, HeartbeatResponse, JoinRequest, NodeReport, RegisterRequest, RoundStatus } from '../common/protocol.ts';
import { decideRound } from '../common/rendezvous.ts';
import { isTerminalPhase, type JobPhase } from '../common/phases.ts';
import type { JobSpec } from '../common/spec/index.ts';
import { openRoundWithEvent, ROUND_CLOSED, ROUND_OPEN, type Job, type Store } from '../store/index.ts';
import { HttpError } from './errors.ts';

export class MasterService {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /** Loads the job and checks the agent's token: 404 for an unknown job, 403 for a wrong token. */
  async authorize(jobId: string, token: string | undefined): Promise<Job> {
    const job = await this.store.jobs.get(jobId);
    if (!job) throw new HttpError(404, 'job_not_found', `no job ${jobId}`);
    if (!token || token !== job.token) throw new HttpError(403, 'forbidden', `token does not belong to job ${jobId}`);
    return job;
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

  /** Joins the open round, or opens the next one when the node is not part of the latest. */
  async join(job: Job, req: JoinRequest): Promise<number> {
    return this.store.transaction(async (tx) => {
      const latest = await tx.rendezvous.latestRound(job.id);
      if (latest && latest.status === ROUND_CLOSED) {
        const members = await tx.rendezvous.listMembers({ jobId: job.id, round: latest.round });
        const same = members.find((m) => m.nodeId === req.node && m.incarnation === req.incarnation);
        if (same) return latest.round;
      }
      let round = latest?.status === ROUND_OPEN ? latest.round : undefined;
      if (round === undefined) {
        round = (latest?.round ?? 0) + 1;
        const spec = job.spec as JobSpec;
        await openRoundWithEvent(tx, {
          jobId: job.id,
          round,
          minNodes: spec.spec.nodes.min,
          maxNodes: latest?.maxNodes ?? spec.spec.nodes.initial,
          cause: `node ${req.node} incarnation ${req.incarnation} joined`,
        });
      }
      await tx.rendezvous.join({ jobId: job.id, round, nodeId: req.node, incarnation: req.incarnation, host: req.host, freePort: req.freePort });
      return round;
    });
  }

  /** Where the round stands for this node; closes or fails it when the rules say so. */
  async roundStatus(job: Job, round: number, node: number, incarnation: number): Promise<RoundStatus> {
    if (isTerminalPhase(job.phase as JobPhase)) {
      return { status: 'failed', round, reason: `job ${job.id} is ${job.phase}${job.reason ? `: ${job.reason}` : ''}` };
    }
    const key = { jobId: job.id, round };
    let current = await this.store.rendezvous.getRound(key);
    if (!current) throw new HttpError(404, 'round_not_found', `job ${job.id} has no rendezvous round ${round}`);
    if (current.status === ROUND_OPEN) {
      await this.decide(job, round);
      current = (await this.store.rendezvous.getRound(key))!;
    }
    if (current.status === ROUND_OPEN) return { status: 'open', round };
    if (current.status !== ROUND_CLOSED) return { status: 'failed', round, reason: `rendezvous round ${round} failed` };
    const member = (await this.store.rendezvous.listMembers(key)).find((m) => m.nodeId === node);
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

  private async decide(job: Job, round: number): Promise<void> {
    const spec = job.spec as JobSpec;
    await this.store.transaction(async (tx) => {
      const key = { jobId: job.id, round };
      const current = await tx.rendezvous.getRound(key);
      if (!current || current.status !== ROUND_OPEN) return;
      const members = await tx.rendezvous.listMembers(key);
      const decision = decideRound({
        round,
        openedAt: current.openedAt,
        lastJoinAt: current.lastJoinAt,
        now: this.now(),
        members: members.map((m) => ({ node: m.nodeId, incarnation: m.incarnation, host: m.host, freePort: m.freePort ?? 0 })),
        minNodes: current.minNodes,
        maxNodes: current.maxNodes,
        unit: spec.spec.nodes.unit,
        lastCallTimeoutMs: spec.spec.rendezvous.lastCallTimeout,
        joinTimeoutMs: spec.spec.rendezvous.joinTimeout,
      });
      if (decision.action === 'wait') return;
      if (decision.action === 'fail') {
        if (await tx.rendezvous.failRound(key)) {
          await tx.nodeEvents.append({ jobId: job.id, kind: 'rendezvous_failed', data: { round, reason: decision.reason } });
        }
        return;
      }
      const ranks = decision.ranked.map((m) => ({ nodeId: m.node, rank: m.groupRank }));
      if (!(await tx.rendezvous.closeRound({ ...key, ranks, masterAddr: decision.masterAddr, masterPort: decision.masterPort }))) return;
      for (const m of decision.ranked) {
        await tx.nodes.update({ jobId: job.id, nodeId: m.node, incarnation: m.incarnation }, { rank: m.groupRank });
      }
      await tx.nodeEvents.append({
        jobId: job.id,
        kind: 'round_closed',
        data: { round, members: decision.ranked, excluded: decision.excluded, masterAddr: decision.masterAddr, masterPort: decision.masterPort },
      });
    });
  }

  async heartbeat(job: Job, req: HeartbeatRequest): Promise<HeartbeatResponse> {
    if (isTerminalPhase(job.phase as JobPhase)) return { action: 'stop', reason: `job ${job.id} is ${job.phase}` };
    const key = { jobId: job.id, nodeId: req.node, incarnation: req.incarnation };
    const node = await this.store.nodes.get(key);
    if (!node) throw new HttpError(404, 'node_not_found', `job ${job.id} has no node ${req.node} incarnation ${req.incarnation}`);
    if (node.status === 'stopped') return { action: 'stop', reason: `node ${req.node} was removed from job ${job.id}` };
    await this.store.nodes.update(key, { lastHeartbeatAt: this.now(), ...(req.step === null ? {} : { step: req.step }) });
    const latest = await this.store.rendezvous.latestRound(job.id);
    if (!latest || latest.round <= req.round) return { action: 'none' };
    if (latest.status === ROUND_OPEN) return { action: 'restart', round: latest.round };
    const members = await this.store.rendezvous.listMembers({ jobId: job.id, round: latest.round });
    const ranked = members.some((m) => m.nodeId === req.node && m.incarnation === req.incarnation && m.rank !== null);
    return ranked ? { action: 'restart', round: latest.round } : { action: 'none' };
  }

  async report(job: Job, req: NodeReport): Promise<void> {
    const key = { jobId: job.id, nodeId: req.node, incarnation: req.incarnation };
    await this.store.transaction(async (tx) => {
      const node = await tx.nodes.get(key);
      if (!node) throw new HttpError(404, 'node_not_found', `job ${job.id} has no node ${req.node} incarnation ${req.incarnation}`);
      const exit = { exitCode: req.exitCode ?? null, exitSignal: req.signal ?? null, exitReason: req.reason ?? req.stderrTail ?? null };
      const now = this.now();
      if (req.kind === 'process_failed') await tx.nodes.update(key, { processRestarts: req.restarts, ...exit });
      else if (req.kind === 'node_failed') await tx.nodes.update(key, { status: 'failed', endedAt: now, ...exit });
      else await tx.nodes.update(key, { status: 'succeeded', endedAt: now, exitCode: 0 });
      const { node: _n, incarnation: _i, kind, ...data } = req;
      await tx.nodeEvents.append({ ...eventKey(key), kind, data });
      if (kind !== 'process_failed') return;
      // Peers restart with this node: open the next round if they are still in a closed one.
      const latest = await tx.rendezvous.latestRound(job.id);
      if (latest && latest.status === ROUND_CLOSED) {
        const spec = job.spec as JobSpec;
        await openRoundWithEvent(tx, {
          jobId: job.id,
          round: latest.round + 1,
          minNodes: spec.spec.nodes.min,
          maxNodes: latest.maxNodes,
          cause: `process failed on node ${req.node} (local rank ${req.localRank ?? '?'}, exit code ${req.exitCode ?? 'none'})`,
        });
      }
    });
  }
}

function eventKey(key: { jobId: string; nodeId: number; incarnation: number }) {
  return { jobId: key.jobId, nodeId: key.nodeId, incarnation: key.incarnation };
}

