// Hang detection on the heartbeat path. A hung job gets one hang_suspected event (keyed by its
// last progress); every agent is asked for evidence (stacks, process tree, log tail) and posts it
// as stack_dump events; then, per spec.faultTolerance.hangAction, a new round restarts every
// node's processes (once all running nodes posted evidence, or after a grace period), or the
// job workflow fails the job on the event.
// Judging the job reads its running nodes' aggregate (count, latest step, any saving; the store
// still visits N rows), so it runs at most once per job per heartbeat interval: the
// heartbeat that wins a compare-and-set on the job row (jobs.hang_checked_at) scans, on whichever
// API replica it lands, and records the hang it found on the job row (jobs.hang_event_id); the
// other heartbeats answer from that row, which authorizing the request already read.
import { readEventData } from '../common/events.ts';
import { decideHang, type HangAction } from '../common/diagnosis.ts';
import type { AgentEvent } from '../common/protocol.ts';
import { decideRoundOpening, roundSpec } from '../common/roundOpening.ts';
import { applyRoundOpening, ROUND_OPEN, type Job, type Node, type RendezvousRound, type Store } from '../store/index.ts';

/** Longest wait for evidence before the restart goes ahead without it: heartbeats × this, at least the minimum. */
const EVIDENCE_GRACE_BEATS = 10;
const EVIDENCE_GRACE_MIN_MS = 5000;

export class HangWatch {
  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /**
   * Called on each heartbeat after the node row was updated, with the job's latest round. Returns
   * the id of the job's current hang event when the job is hung, so the reply can ask for evidence.
   */
  async check(job: Job, node: Node, processesAlive: boolean, latest: RendezvousRound | undefined): Promise<number | undefined> {
    const spec = job.spec.spec;
    const timeout = spec.faultTolerance.hangTimeout;
    // Specs stored before startupTimeout/checkpointTimeout existed keep their old behaviour: no limit.
    const startupTimeout = spec.faultTolerance.startupTimeout ?? Infinity;
    const now = this.now();
    const roundClosedAt = latest?.closedAt ?? null;
    // Cheap path: this node moved (or its groups started) recently, so the job is not hung.
    if (Math.max(node.stepAt ?? 0, roundClosedAt ?? 0) > now - Math.min(timeout, startupTimeout)) return undefined;
    // The job may be idle. The last scan's answer stands for one heartbeat interval; after that,
    // the heartbeat that claims the next scan runs it.
    const current = job.hangEventId ?? undefined;
    const interval = spec.faultTolerance.heartbeatInterval;
    if (job.hangCheckedAt !== null && now - job.hangCheckedAt < interval) return current;
    if (!(await this.store.jobs.claimHangCheck(job.id, now, interval))) return current;
    // Judged over the running nodes' aggregate (one row); the rows themselves only once hung.
    const running = await this.store.nodes.runningSummary(job.id);
    // This heartbeat says whether its node's processes live; another running node is taken as alive.
    const onlyThisOne = running.count === 1 && node.status === 'running';
    const decision = decideHang({
      now,
      hangTimeoutMs: timeout,
      startupTimeoutMs: startupTimeout,
      checkpointTimeoutMs: spec.faultTolerance.checkpointTimeout ?? Infinity,
      roundOpen: latest?.status === ROUND_OPEN,
      roundClosedAt,
      running: { count: running.count, lastStepAt: running.lastStepAt, checkpointing: running.checkpointing, processesAlive: onlyThisOne ? processesAlive : true },
    });
    if (!decision.hung || !latest) {
      if (current !== undefined) await this.store.jobs.setHangEvent(job.id, null);
      return undefined;
    }
    const action: HangAction = spec.faultTolerance.hangAction ?? 'restart';
    const hang = await this.store.transaction(async (tx) => {
      const [last] = await tx.nodeEvents.list(job.id, { kinds: ['hang_suspected'], limit: 1, newestFirst: true });
      if (last && readEventData('hang_suspected', last.data)?.since === decision.since) return last;
      const step = running.step ?? 0;
      return tx.nodeEvents.append({
        jobId: job.id,
        kind: 'hang_suspected',
        source: 'api',
        data: { since: decision.since, idleMs: decision.idleMs, step, round: latest.round, action, hangTimeout: timeout, startup: decision.startup },
      });
    });
    if (hang.id !== current) await this.store.jobs.setHangEvent(job.id, hang.id);
    if (action === 'restart') await this.restartWhenEvidenceIn(job, hang.id, hang.createdAt, latest.round, await this.store.nodes.listByJob(job.id, { statuses: ['running'] }));
    return hang.id;
  }

  /** Opens the next round once every running node posted its evidence, or the grace period ran out. */
  private async restartWhenEvidenceIn(job: Job, hangId: number, detectedAt: number, round: number, running: Node[]): Promise<void> {
    const spec = job.spec.spec;
    const dumps = await this.store.nodeEvents.list(job.id, { kinds: ['stack_dump'], after: hangId });
    const reported = new Set(dumps.map((d) => `${d.nodeId}/${d.incarnation}`));
    const allIn = running.every((n) => reported.has(`${n.nodeId}/${n.incarnation}`));
    const grace = Math.max(EVIDENCE_GRACE_MIN_MS, EVIDENCE_GRACE_BEATS * spec.faultTolerance.heartbeatInterval);
    if (!allIn && this.now() - detectedAt < grace) return;
    const idleMs = this.now() - detectedAt + spec.faultTolerance.hangTimeout;
    await this.store.transaction(async (tx) => {
      const latest = await tx.rendezvous.latestRound(job.id);
      await applyRoundOpening(tx, job.id, decideRoundOpening(latest, { kind: 'hang', round, idleMs, hangEventId: hangId }, roundSpec(spec)));
    });
  }

  /** Evidence an agent posted. */
  async recordAgentEvent(job: Job, event: AgentEvent): Promise<void> {
    await this.store.nodeEvents.append({
      jobId: job.id,
      nodeId: event.node,
      incarnation: event.incarnation,
      kind: event.kind,
      rank: event.rank ?? null,
      source: 'agent',
      data: event.data,
    });
  }
}
