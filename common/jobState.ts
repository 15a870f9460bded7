// The job master's state and policy, without Temporal: the workflow feeds it events and
// commands and carries out the actions it returns. Plain JSON so it survives continue-as-new.
import { PLANS_KEPT, type AppliedPlan, type NodeResources } from './brainPlans.ts';
import type { EventData, JobEvent, NodeEventKind, RejectedEvent } from './events.ts';
import { readFailureEvent, type FailureEvent, type FailureKindEvent } from './failureEvent.ts';
import { decide, NODE_DOWN_POLICY, PROCESS_FAILURE_POLICY, type NodeDownAction, type NodeDownTrigger, type ProcessFailureAction } from './failurePolicy.ts';
import type { NodeIdentity, RoundDeadlineCheck } from './jobActivities.ts';
import type { StepReading } from './trainingProgress.ts';
import type { PendingNode } from './pendingNodes.ts';
import { formatDuration } from './rendezvous.ts';
import { JOB_REASON, namesItsCulprit, RELAUNCH_NOTE, ROUND_CAUSE } from './jobReasons.ts';
import type { JobPhase, NodeStatus } from './phases.ts';
import { isTerminalPhase } from './phases.ts';

export interface NodeRecord {
  id: number;
  incarnation: number;
  status: NodeStatus;
  rank: number | null;
  restarts: number;
  pid: number | null;
  exitCode: number | null;
  reason: string | null;
  /** Set by a Brain plan (OOM: more memory); absent or null: the spec's resources. */
  resources?: NodeResources | null;
  /** Pre-flight node check verdict of this incarnation, e.g. "ok 0.05 s" (absent: not checked). */
  check?: string;
  /** The last process failure of this incarnation: its exception or last stderr line (absent: none). */
  lastError?: string;
  /**
   * Workflow time this incarnation was launched, while it has not registered: its
   * spec.faultTolerance.pendingTimeout counts from here (absent: started, or not timed).
   */
  pendingSince?: number;
}

export interface JobLimits {
  minNodes: number;
  maxNodes: number;
  unit: number;
  nprocPerNode: number;
  maxNodeRelaunches: number;
  /** spec.rendezvous.joinTimeout: the workflow checks a round this long after it opened (absent: only the API checks). */
  joinTimeoutMs?: number;
  /** spec.faultTolerance.pendingTimeout (absent: pending nodes are not timed). */
  pendingTimeoutMs?: number;
  /**
   * The job succeeds once every node of the latest round's world succeeded, and nodes waiting
   * outside that world are stopped. Unset (runs recorded before): only when every node succeeded.
   */
  worldEndsJob?: boolean;
  /**
   * A straggler the node check marks `exclude` is removed: the API decided it against
   * spec.nodes.min when it held the agent. Unset (runs recorded before): only while the
   * workflow's own count of active nodes still holds spec.nodes.min.
   */
  checkDecidesExclusion?: boolean;
}

/** A user error seen once: the same one at the same step again fails the job fast. */
export interface UserErrorSeen {
  step: number | null;
  signature: string;
  /** Where it was seen, so a stronger culprit reported later in the same round can take it back. */
  node?: number;
  round?: number;
}

export interface JobStateData {
  phase: JobPhase;
  reason: string | null;
  targetNodes: number;
  round: number;
  /** Nodes in the latest closed round. */
  roundNodes: number;
  nodes: NodeRecord[];
  nodeRelaunches: number;
  processRestarts: number;
  /** Id of the last node event applied. */
  cursor: number;
  /** Scale request ids already applied (dedupe across retries and continue-as-new). */
  appliedRequestIds: string[];
  warnings: string[];
  /** Brain plans received, newest last (absent in states carried from before the field existed). */
  plans?: AppliedPlan[];
  /** The Brain did not answer the initial plan: ask again until it does (absent: not missed). */
  brainInitialMissed?: boolean;
  /** Recent user errors (absent in states carried from before the field existed). */
  userErrors?: UserErrorSeen[];
  /** Latest committed checkpoint step, 0 before the first (absent in older carried states). */
  checkpointStep?: number;
  /**
   * When the latest checkpoint was committed (store clock, ms) and the training rate between it
   * and the one before (steps/s); absent until two checkpoints were committed in one world.
   */
  checkpointRate?: { at: number; stepsPerSecond?: number };
  /** Dataset epochs finished (epoch_done events seen). */
  epochsDone?: number;
  /**
   * Signature of the latest culprit failure when every process of its node failed alike before
   * any step; the same again next time is a crash loop (absent: the latest was not one).
   */
  crashLoop?: string;
  /**
   * The open rendezvous round and when the workflow checks its join deadline (store clock, ms):
   * openedAt + joinTimeout, later if the store said not yet. Absent: no round open, or not timed.
   */
  openRound?: { round: number; checkAt: number };
  /**
   * The latest training step and rate a watchNodes call read from the store, with when (store
   * clock, ms): only for the current details, never a decision. Absent: none read yet.
   */
  progress?: StepReading;
}

/** Side effects the workflow performs for the state. */
export type JobAction =
  | { type: 'launch'; nodes: { id: number; incarnation: number; avoidHostOfIncarnation?: number }[] }
  | { type: 'remove'; nodes: { id: number; incarnation: number }[] }
  | { type: 'openRound'; cause: string }
  /** Ask the Brain for an OOM plan for the node's new incarnation before launching it. */
  | { type: 'oomPlan'; node: { id: number; incarnation: number }; failedIncarnation: number; exitCode: number | null; reason: string };

const LIVE: NodeStatus[] = ['pending', 'launching', 'running'];

/**
 * The event kinds JobState.applyEvents acts on: watchNodes wakes the workflow only for these, so
 * events it ignores (its own launches and stops, stack dumps, ledger rewinds) add no history.
 */
export const JOB_STATE_EVENT_KINDS: NodeEventKind[] = [
  'round_opened',
  'round_closed',
  'rendezvous_failed',
  'node_registered',
  'process_failed',
  'hang_suspected',
  'node_succeeded',
  'node_failed',
  'node_lost',
  'node_check',
  'straggler_detected',
  'checkpoint_committed',
  'epoch_done',
  'shard_poisoned',
];

/**
 * Of JOB_STATE_EVENT_KINDS, progress records: they update what the status shows and decide
 * nothing, so watchNodes holds them up to ROVER_WATCH_COALESCE_MS for a batch of their own, and a
 * job that checkpoints every minute does not add history every minute.
 */
export const PROGRESS_EVENT_KINDS: NodeEventKind[] = ['checkpoint_committed', 'epoch_done'];
const APPLIED_IDS_KEPT = 200;
/** A join deadline the store says is not due yet is looked at again no sooner than this (clock skew). */
const ROUND_RECHECK_MIN_MS = 1000;
const USER_ERRORS_KEPT = 20;

export function initialJobState(initialNodes: number): JobStateData {
  return {
    phase: 'PENDING',
    reason: null,
    targetNodes: initialNodes,
    round: 0,
    roundNodes: 0,
    nodes: Array.from({ length: initialNodes }, (_, id) => newNode(id, 0)),
    nodeRelaunches: 0,
    processRestarts: 0,
    cursor: 0,
    appliedRequestIds: [],
    warnings: [],
    userErrors: [],
  };
}

function newNode(id: number, incarnation: number): NodeRecord {
  return { id, incarnation, status: 'pending', rank: null, restarts: 0, pid: null, exitCode: null, reason: null };
}

/** How JobState.relaunch replaces a node. */
interface RelaunchOptions {
  /** Spends one of spec.faultTolerance.maxNodeRelaunches (node faults; not the platform's or the check's). */
  counted: boolean;
  /** Keep the new incarnation off the old one's host, where the backend knows hosts. */
  avoidHost?: boolean;
  /**
   * The cause of the round the peers restart into (ROUND_CAUSE), from the new incarnation.
   * Absent: the node was in no world, and its new incarnation joins like a scaled-up node.
   */
  cause?: (node: number, incarnation: number) => string;
  /** Warn `why: relaunched as incarnation N (note)`; absent: no warning (the failure is on record). */
  warning?: { why: string; note?: string } | undefined;
  /** Out of memory: ask for an OOM plan for the new incarnation before launching it. */
  oom?: { exitCode: number | null; reason: string } | undefined;
}

/** How a node-down action reads and where its node goes: the trigger's words and round. */
interface NodeDownContext {
  /** The failure, for a shrink or a failed job. */
  why: string;
  /** RelaunchOptions.cause: the round its peers restart into; absent for a node in no world. */
  cause?: RelaunchOptions['cause'];
  warning?: RelaunchOptions['warning'];
  oom?: RelaunchOptions['oom'];
  /** The node was in the world: after a shrink its peers form a smaller one. */
  rejoin: boolean;
  /** The warning when the node is kept. */
  kept?: string;
}

export class JobState {
  constructor(
    readonly data: JobStateData,
    readonly limits: JobLimits,
  ) {}

  get terminal(): boolean {
    return isTerminalPhase(this.data.phase);
  }

  /** Nodes that are part of the job now (not removed, not replaced). */
  activeNodes(): NodeRecord[] {
    return this.data.nodes.filter((n) => n.status !== 'stopped');
  }

  node(id: number): NodeRecord | undefined {
    return this.data.nodes.find((n) => n.id === id);
  }

  worldSize(): number {
    return this.data.roundNodes * this.limits.nprocPerNode;
  }

  /** Ends the job; the workflow then tears every live node down, so none is listed running after. */
  finish(phase: 'SUCCEEDED' | 'FAILED' | 'STOPPED', reason: string | null): void {
    if (this.terminal) return;
    this.data.phase = phase;
    this.data.reason = reason;
    for (const node of this.data.nodes) {
      if (!LIVE.includes(node.status)) continue;
      node.status = 'stopped';
      node.rank = null;
    }
  }

  /** A plan's resources for one node incarnation (kept by its later incarnations). */
  setNodeResources(id: number, incarnation: number, resources: NodeResources): void {
    const node = this.node(id);
    if (node && node.incarnation === incarnation) node.resources = resources;
  }

  /** Keeps the plan (and what it changed) for the status. */
  recordPlan(plan: AppliedPlan): void {
    this.data.plans = [...(this.data.plans ?? []), plan].slice(-PLANS_KEPT);
  }

  warn(message: string): void {
    this.data.warnings = [...this.data.warnings.slice(-19), message];
  }

  /** Checks a scale request against the spec; returns the refusal, or undefined if acceptable. */
  scaleRefusal(nodes: number): string | undefined {
    const { minNodes, maxNodes, unit } = this.limits;
    if (!Number.isInteger(nodes) || nodes < minNodes || nodes > maxNodes) {
      return JOB_REASON.scaleOutOfRange(nodes, minNodes, maxNodes);
    }
    if (nodes % unit !== 0) return JOB_REASON.scaleNotUnit(nodes, unit);
    if (this.terminal) return JOB_REASON.scaleEnded(this.data.phase);
    return undefined;
  }

  /** Applies an accepted scale request once per request id; `cause` opens the round (default: ROUND_CAUSE.scale). */
  scale(nodes: number, requestId: string | undefined, cause: string = ROUND_CAUSE.scale(nodes)): JobAction[] {
    if (requestId && this.data.appliedRequestIds.includes(requestId)) return [];
    if (requestId) this.data.appliedRequestIds = [...this.data.appliedRequestIds, requestId].slice(-APPLIED_IDS_KEPT);
    const active = this.activeNodes().sort((a, b) => a.id - b.id);
    if (nodes === this.data.targetNodes && nodes === active.length) return [];
    this.data.targetNodes = nodes;
    const openRound = this.openRound(cause);
    if (nodes > active.length) {
      const nextId = Math.max(-1, ...this.data.nodes.map((n) => n.id)) + 1;
      const added = Array.from({ length: nodes - active.length }, (_, i) => newNode(nextId + i, 0));
      this.data.nodes.push(...added);
      // Open the round first: the new nodes join it instead of opening one of their own.
      return [openRound, { type: 'launch', nodes: added.map((n) => ({ id: n.id, incarnation: 0 })) }];
    }
    const removed = active.slice(nodes);
    for (const n of removed) n.status = 'stopped';
    const remove: JobAction[] = removed.length ? [{ type: 'remove', nodes: removed.map((n) => ({ id: n.id, incarnation: n.incarnation })) }] : [];
    return [...remove, openRound];
  }

  /** Before any launch (the initial plan): start with `nodes` nodes; false once launching began. */
  setInitialNodes(nodes: number): boolean {
    if (this.data.phase !== 'PENDING' && this.data.phase !== 'LAUNCHING') return false;
    if (this.data.nodes.some((n) => n.status !== 'pending')) return false;
    this.data.targetNodes = nodes;
    this.data.nodes = Array.from({ length: nodes }, (_, id) => newNode(id, 0));
    return true;
  }

  /** `now` (workflow time) starts each node's pending timeout; without it they are not timed. */
  markLaunched(launched: { id: number; incarnation: number; pid: number | null }[], now?: number): void {
    for (const l of launched) {
      const node = this.node(l.id);
      if (!node || node.incarnation !== l.incarnation || node.status !== 'pending') continue;
      node.status = 'launching';
      node.pid = l.pid;
      if (now !== undefined && this.limits.pendingTimeoutMs !== undefined) node.pendingSince = now;
    }
    if (this.data.phase === 'PENDING' || this.data.phase === 'LAUNCHING') this.data.phase = 'RENDEZVOUS';
  }

  /**
   * Applies a batch of node events in order; returns what the workflow must do. Rows watchNodes
   * rejected (`rejected`, no schema describes them) are passed over in their place, with a warning.
   */
  applyEvents(events: JobEvent[], rejected: RejectedEvent[] = []): JobAction[] {
    const actions: JobAction[] = [];
    const batch = rejected.length === 0 ? events : [...events, ...rejected].sort((a, b) => a.id - b.id);
    for (const event of batch) {
      if (event.id <= this.data.cursor) continue;
      this.data.cursor = event.id;
      if ('problem' in event) this.warn(skippedEvent(event));
      else if (!this.terminal) actions.push(...this.applyEvent(event));
    }
    return actions;
  }

  private current(event: JobEvent): NodeRecord | undefined {
    const node = event.nodeId === null ? undefined : this.node(event.nodeId);
    return node && node.incarnation === event.incarnation ? node : undefined;
  }

  private applyEvent(event: JobEvent): JobAction[] {
    switch (event.kind) {
      case 'round_opened': {
        const { round } = event.data;
        this.data.round = Math.max(this.data.round, round);
        this.rescale();
        // Its join deadline is a workflow timer: it fires with no agent alive to ask the API.
        if (round === this.data.round && this.limits.joinTimeoutMs !== undefined) {
          this.data.openRound = { round, checkAt: event.at + this.limits.joinTimeoutMs };
        }
        return [];
      }
      case 'round_closed':
        return this.roundClosed(event.data.round, event.data.members);
      case 'rendezvous_failed':
        this.finish('FAILED', event.data.reason);
        return [];
      case 'node_registered': {
        const node = this.current(event);
        if (node && LIVE.includes(node.status)) {
          node.status = 'running';
          node.pid = event.data.pid;
          delete node.pendingSince;
        }
        return [];
      }
      case 'process_failed':
        return this.processFailed(event);
      case 'hang_suspected': {
        const { idleMs, startup, step, action } = event.data;
        const idle = `${Math.round(idleMs / 1000)} s`;
        const what = startup === true ? JOB_REASON.hangAtStartup(idle) : JOB_REASON.hangInTraining(idle, String(step));
        if (action === 'fail') this.finish('FAILED', JOB_REASON.hangFailed(what));
        else this.warn(JOB_REASON.hangWarned(what, action));
        return [];
      }
      case 'node_succeeded': {
        const node = this.current(event);
        if (node && LIVE.includes(node.status)) node.status = 'succeeded';
        this.checkSucceeded();
        return [];
      }
      case 'node_failed':
      case 'node_lost':
        return this.nodeDown(event);
      case 'node_check':
        return this.nodeChecked(event);
      case 'straggler_detected':
        return this.stragglerDetected(event);
      case 'checkpoint_committed':
        this.checkpointCommitted(event.data.step, event.at);
        return [];
      case 'epoch_done':
        this.data.epochsDone = Math.max(this.data.epochsDone ?? 0, event.data.epoch + 1);
        return [];
      case 'shard_poisoned': {
        const { shardIndex, epoch, attempts, policy } = event.data;
        const shard = `shard ${shardIndex} of epoch ${epoch} failed ${attempts} times`;
        if (policy === 'fail') this.finish('FAILED', JOB_REASON.poisonFailed(shard));
        else this.warn(JOB_REASON.poisonSkipped(shard));
        return [];
      }
      default:
        return [];
    }
  }

  /** A newer committed checkpoint: its step, and the rate since the previous one when it is later. */
  private checkpointCommitted(step: number, at: number): void {
    const before = { step: this.data.checkpointStep ?? 0, at: this.data.checkpointRate?.at };
    if (step <= before.step) return;
    this.data.checkpointStep = step;
    // Progress between commits, so time lost to a restart in between counts against it.
    const seconds = before.at === undefined ? 0 : (at - before.at) / 1000;
    this.data.checkpointRate = { at, ...(before.step > 0 && seconds > 0 && { stepsPerSecond: (step - before.step) / seconds }) };
  }

  private roundClosed(round: number, members: EventData<'round_closed'>['members']): JobAction[] {
    if (round < this.data.round) return [];
    this.data.round = round;
    if (this.data.openRound && this.data.openRound.round <= round) delete this.data.openRound;
    this.data.roundNodes = members.length;
    for (const node of this.data.nodes) node.rank = null;
    for (const m of members) {
      const node = this.node(m.node);
      if (node && node.incarnation === m.incarnation) {
        node.rank = m.groupRank;
        if (LIVE.includes(node.status)) node.status = 'running';
        delete node.pendingSince;
      }
    }
    this.data.phase = 'RUNNING';
    return [];
  }

  private checkSucceeded(): void {
    const active = this.activeNodes();
    if (active.length > 0 && active.every((n) => n.status === 'succeeded')) return this.finish('SUCCEEDED', null);
    if (!this.limits.worldEndsJob || this.data.phase !== 'RUNNING') return;
    // The latest round's whole world finished the training: nodes outside it (cut to a multiple
    // of the node unit, or past max) wait for a round that no one will open. torchrun's agents
    // likewise close the rendezvous on success, which sends its waiting nodes home.
    const world = active.filter((n) => n.rank !== null);
    if (world.length === this.data.roundNodes && world.length > 0 && world.every((n) => n.status === 'succeeded')) {
      const waiting = active.length - world.length;
      this.warn(JOB_REASON.worldFinished(this.data.round, world.length, waiting));
      this.finish('SUCCEEDED', null);
    }
  }

  /**
   * A training process failed and its node restarts it in place. The API judged the failure where
   * it was seen (its class, and whether it is its round's culprit or a consequence of another
   * node's failure); a consequence changes nothing but the node's last error. For a culprit: a
   * user error seen before at the same step fails the job, and so does the same crash of every
   * process of a node before any step twice in a row; a node fault relaunches the node.
   */
  private processFailed(event: JobEvent<'process_failed'>): JobAction[] {
    const f = readFailureEvent(event);
    const node = this.current(event);
    const consequence = f.role === 'consequence';
    if (node) node.lastError = consequence ? JOB_REASON.afterFailureOf(f.errorLine, f.consequenceOf?.node) : f.errorLine;
    if (!consequence) {
      if (node) node.restarts = f.failures ?? node.restarts + 1;
      if (f.supersedes) this.takeBack(f.supersedes, f.round, { node: event.nodeId, lost: false });
      // A superseded culprit already counted this round's restart.
      else this.data.processRestarts += 1;
    }
    // Each remembers what it saw (the last crash signature, user errors by step): asked in table order.
    const crashLoop = consequence ? undefined : this.crashLoop(event, f);
    const userError = consequence || crashLoop !== undefined ? undefined : this.repeatedUserError(event, f);
    const { then } = decide(PROCESS_FAILURE_POLICY, {
      consequence,
      crashLoop: crashLoop !== undefined,
      repeatedUserError: userError !== undefined,
      nodeFault: f.failure.class === 'nodeFault' && node !== undefined && LIVE.includes(node.status),
    });
    const apply: Record<ProcessFailureAction, () => JobAction[]> = {
      ignore: () => [],
      restartInPlace: () => [],
      failJob: () => {
        this.finish('FAILED', crashLoop ?? userError!);
        return [];
      },
      nodeDown: () => this.nodeDown(event, JOB_REASON.nodeFault(describeFailure(event, f.exitCode), f.failure.rule)),
    };
    return apply[then]();
  }

  /**
   * An earlier culprit of the round turned out a consequence of `by`: its node gets its restart
   * back, its user error is forgotten. A lost node's relaunch, not a process failure, restarted
   * that round: the job's process restart is taken back too.
   */
  private takeBack(superseded: { node: number; incarnation: number }, round: number | null, by: { node: number | null; lost: boolean }): void {
    const node = this.node(superseded.node);
    if (node && node.incarnation === superseded.incarnation) {
      node.restarts = Math.max(0, node.restarts - 1);
      if (node.lastError && !namesItsCulprit(node.lastError)) node.lastError = JOB_REASON.afterFailureOf(node.lastError, by.node);
    }
    if (by.lost) this.data.processRestarts = Math.max(0, this.data.processRestarts - 1);
    this.data.userErrors = (this.data.userErrors ?? []).filter((e) => !(e.node === superseded.node && e.round === round));
  }

  /** The failure reason when this is the second crash in a row of a whole node before any step. */
  private crashLoop(event: FailureKindEvent, f: FailureEvent): string | undefined {
    const signature = `${f.failure.class}: ${f.errorLine}`;
    const loop = f.allProcessesAlike && f.step === null;
    const repeated = loop && this.data.crashLoop === signature;
    if (loop) this.data.crashLoop = signature;
    else delete this.data.crashLoop;
    if (!repeated) return undefined;
    return JOB_REASON.crashLoop(describeFailure(event, f.exitCode), f.failure.rule, f.errorLine);
  }

  /** The failure reason when a user error repeats at the same step; else remembers it. */
  private repeatedUserError(event: FailureKindEvent, f: FailureEvent): string | undefined {
    if (f.failure.class !== 'userError') return undefined;
    const seen = this.data.userErrors ?? [];
    if (seen.some((e) => e.signature === f.errorLine && e.step === f.step)) {
      const at = f.step === null ? 'before any step' : `at step ${f.step}`;
      return JOB_REASON.repeatedUserError(describeFailure(event, f.exitCode), at, f.failure.rule, f.errorLine);
    }
    const where = { ...(event.nodeId !== null && { node: event.nodeId }), ...(f.round !== null && { round: f.round }) };
    this.data.userErrors = [...seen, { step: f.step, signature: f.errorLine, ...where }].slice(-USER_ERRORS_KEPT);
    return undefined;
  }

  /** A node check verdict: faulty → relaunch outside the budget; a straggler the check excluded → shrink. */
  private nodeChecked(event: JobEvent<'node_check'>): JobAction[] {
    const node = this.current(event);
    // A probe result of a check round decides nothing; the verdict does.
    if (!('verdict' in event.data) || !node || !LIVE.includes(node.status)) return [];
    const { verdict, bestSeconds, medianSeconds, exclude } = event.data;
    node.check = JOB_REASON.checkLine(verdict, bestSeconds, medianSeconds);
    const where = `node ${node.id} incarnation ${node.incarnation}`;
    if (verdict === 'faulty') {
      node.status = 'failed';
      node.reason = JOB_REASON.nodeCheckFaulty(where);
      const decided = this.decideNodeDown('checkFaulty', false);
      return this.applyNodeDown(node, decided, { why: node.reason, cause: ROUND_CAUSE.nodeCheckRelaunch, warning: { why: node.reason, note: RELAUNCH_NOTE.nodeCheck }, rejoin: true });
    }
    if (verdict !== 'straggler') return [];
    const remaining = this.activeNodes().length - 1;
    if (exclude && (this.limits.checkDecidesExclusion || remaining >= this.limits.minNodes)) {
      node.status = 'stopped';
      node.reason = JOB_REASON.stragglerExcluded(where);
      this.data.targetNodes = remaining;
      this.warn(JOB_REASON.continuingWith(node.reason, remaining));
      return [
        { type: 'remove', nodes: [{ id: node.id, incarnation: node.incarnation }] },
        this.openRound(ROUND_CAUSE.stragglerExcluded(node.id)),
      ];
    }
    this.warn(JOB_REASON.stragglerKept(where, node.check));
    return [];
  }

  /** A straggler while training: always a warning; relaunched (within the node budget) when the event asks. */
  private stragglerDetected(event: JobEvent<'straggler_detected'>): JobAction[] {
    const node = this.current(event);
    if (!node || !LIVE.includes(node.status)) return [];
    const { seconds, medianSeconds, relaunch } = event.data;
    const what = JOB_REASON.straggler(`node ${node.id} incarnation ${node.incarnation}`, seconds, medianSeconds);
    if (!relaunch) {
      this.warn(what);
      return [];
    }
    const decided = this.decideNodeDown('straggler', false);
    if (decided.action === 'relaunch') {
      node.status = 'failed';
      node.reason = what;
    }
    return this.applyNodeDown(node, decided, {
      why: what, cause: ROUND_CAUSE.stragglerRelaunch, warning: { why: what, note: RELAUNCH_NOTE.straggler }, rejoin: true, kept: JOB_REASON.stragglerNotRelaunched(what, this.budget()),
    });
  }

  /** NODE_DOWN_POLICY's action for a node down by `trigger` now. */
  private decideNodeDown(trigger: NodeDownTrigger, platformCause: boolean): NodeDownAction {
    return decide(NODE_DOWN_POLICY, { trigger, platformCause, budgetLeft: this.data.nodeRelaunches < this.limits.maxNodeRelaunches }).then;
  }

  /** Carries out NODE_DOWN_POLICY's action for `node`, with the words and round of its trigger. */
  private applyNodeDown(node: NodeRecord, decided: NodeDownAction, how: NodeDownContext): JobAction[] {
    switch (decided.action) {
      case 'relaunch':
        return this.relaunch(node, { counted: decided.counted, avoidHost: decided.avoidHost, cause: how.cause, warning: how.warning, oom: how.oom });
      case 'shrinkOrFail':
        return this.shrinkOrFail(node, how.why, { rejoin: how.rejoin });
      case 'keep':
        if (how.kept) this.warn(how.kept);
        return [];
    }
  }

  /**
   * Replaces a node by its next incarnation (keeping a plan's resources) and returns what the
   * workflow does about it, in this order: remove the old incarnation; open the round its peers
   * restart into (only with a `cause`), so they restart while the new one starts; ask for an OOM
   * plan (with `oom`); launch the new incarnation.
   */
  private relaunch(node: NodeRecord, { counted, avoidHost = false, cause, warning, oom }: RelaunchOptions): JobAction[] {
    if (counted) this.data.nodeRelaunches += 1;
    const old = { id: node.id, incarnation: node.incarnation };
    const next: NodeRecord = { ...newNode(node.id, node.incarnation + 1), ...(node.resources && { resources: node.resources }) };
    this.data.nodes = this.data.nodes.map((n) => (n === node ? next : n));
    if (warning) this.warn(JOB_REASON.relaunched(warning.why, next.incarnation, warning.note));
    const nextId = { id: next.id, incarnation: next.incarnation };
    const remove: JobAction = { type: 'remove', nodes: [old] };
    const launch: JobAction = { type: 'launch', nodes: [{ ...nextId, ...(avoidHost && { avoidHostOfIncarnation: old.incarnation }) }] };
    if (!cause) return [remove, launch];
    const oomPlan: JobAction[] = oom ? [{ type: 'oomPlan', node: nextId, failedIncarnation: old.incarnation, exitCode: oom.exitCode, reason: oom.reason }] : [];
    return [remove, this.openRound(cause(next.id, next.incarnation)), ...oomPlan, launch];
  }

  /** A new round is opening: a training job is rescaling (RUNNING → RESCALING; other phases keep theirs). */
  private rescale(): void {
    if (this.data.phase === 'RUNNING') this.data.phase = 'RESCALING';
  }

  /** The openRound action, with the phase it implies. */
  private openRound(cause: string): JobAction {
    this.rescale();
    return { type: 'openRound', cause };
  }

  /** Relaunches used and allowed, as the warnings and reasons say it. */
  private budget(): string {
    return JOB_REASON.budgetExhausted(this.data.nodeRelaunches, this.limits.maxNodeRelaunches);
  }

  /** A node failed or vanished: relaunch it, shrink to the survivors, or fail the job. */
  private nodeDown(event: FailureKindEvent, reason?: string): JobAction[] {
    const node = this.current(event);
    if (!node || !LIVE.includes(node.status)) return [];
    // Its peers' failure charged before the loss was noticed was a consequence of it.
    const { supersedes, round } = readFailureEvent(event);
    if (event.kind !== 'process_failed' && supersedes) this.takeBack(supersedes, round, { node: event.nodeId, lost: true });
    const exitCode = event.data.exitCode ?? null;
    const why = reason ?? describeFailure(event, exitCode);
    node.status = event.kind === 'node_lost' ? 'lost' : 'failed';
    node.exitCode = exitCode;
    node.reason = why;
    // Lost to the platform (the stack stopped, a pod evicted or preempted): not the job's fault.
    const platformCause = event.kind === 'process_failed' ? null : (event.data.platformCause ?? null);
    return this.applyNodeDown(node, this.decideNodeDown('down', platformCause !== null), {
      why,
      cause: ROUND_CAUSE.relaunch,
      warning: platformCause === null ? undefined : { why, note: RELAUNCH_NOTE.platform(platformCause) },
      // Out of memory: the Brain's OOM plan sets the new incarnation's memory before it launches.
      oom: event.data.oomKilled ? { exitCode, reason: why } : undefined,
      rejoin: true,
    });
  }

  /**
   * The node's relaunch budget is spent: go on without it if spec.nodes.min still holds, else
   * fail the job. `rejoin`: the node was in the world, so its peers form a smaller one.
   */
  private shrinkOrFail(node: NodeRecord, why: string, { rejoin }: { rejoin: boolean }): JobAction[] {
    const old = { id: node.id, incarnation: node.incarnation };
    const survivors = this.activeNodes().filter((n) => n !== node && (LIVE.includes(n.status) || n.status === 'succeeded'));
    const shrinkTo = survivors.length - (survivors.length % this.limits.unit);
    const budget = this.budget();
    if (shrinkTo >= this.limits.minNodes && shrinkTo > 0) {
      node.status = 'stopped';
      this.data.targetNodes = shrinkTo;
      this.warn(JOB_REASON.shrunk(why, budget, shrinkTo));
      const remove: JobAction = { type: 'remove', nodes: [old] };
      return rejoin ? [remove, this.openRound(ROUND_CAUSE.shrink(shrinkTo, why))] : [remove];
    }
    this.finish('FAILED', JOB_REASON.belowMin(why, budget, survivors.length, this.limits.minNodes));
    // The incarnation that ended the job is torn down (and its logs kept) like every other.
    return [{ type: 'remove', nodes: [old] }];
  }

  /** When the workflow must next look at a deadline (ms; store clock for rounds, workflow time for nodes), or undefined. */
  nextDeadline(): number | undefined {
    if (this.terminal) return undefined;
    const timeout = this.limits.pendingTimeoutMs;
    const pending = timeout === undefined ? [] : this.pendingNodes().map((n) => n.pendingSince! + timeout);
    const at = [...(this.data.openRound ? [this.data.openRound.checkAt] : []), ...pending];
    return at.length === 0 ? undefined : Math.min(...at);
  }

  /** The open round whose join deadline is due at `now`, for the store to settle. */
  roundDue(now: number): number | undefined {
    const open = this.data.openRound;
    return !this.terminal && open && open.checkAt <= now ? open.round : undefined;
  }

  /**
   * The store's answer for a round whose join deadline was due: it failed the round (the job
   * fails with its reason: how many nodes joined and why the others are pending), the round was
   * settled already (its event is on its way), or the store's clock says not yet.
   */
  roundChecked(round: number, check: RoundDeadlineCheck, now: number): void {
    const open = this.data.openRound;
    if (check.status === 'failed') this.finish('FAILED', check.reason);
    if (!open || open.round !== round) return;
    if (check.status === 'open') open.checkAt = Math.max(check.recheckAt, now + ROUND_RECHECK_MIN_MS);
    else delete this.data.openRound;
  }

  /** Launched nodes pending past spec.faultTolerance.pendingTimeout at `now` (workflow time). */
  pendingDue(now: number): NodeIdentity[] {
    const timeout = this.limits.pendingTimeoutMs;
    if (this.terminal || timeout === undefined) return [];
    return this.pendingNodes()
      .filter((n) => n.pendingSince! + timeout <= now)
      .map((n) => ({ id: n.id, incarnation: n.incarnation }));
  }

  /**
   * What the backend says about the nodes pendingDue named: one it reports still pending is
   * relaunched as its next incarnation (counted: a node that never starts must not relaunch
   * forever), or, with the budget spent, left behind if spec.nodes.min still holds, else the job
   * fails; its reason says why it is pending in the backend's words. One it does not report has
   * started meanwhile (its node_registered is on its way) and is no longer timed.
   */
  pendingTimedOut(reports: PendingNode[], now: number): JobAction[] {
    const actions: JobAction[] = [];
    for (const due of this.pendingDue(now)) {
      if (this.terminal) break;
      const node = this.node(due.id)!;
      const report = reports.find((r) => r.id === node.id && r.incarnation === node.incarnation);
      if (!report) {
        delete node.pendingSince;
        continue;
      }
      const why = JOB_REASON.pendingTimeout(`node ${node.id} incarnation ${node.incarnation}`, formatDuration(this.limits.pendingTimeoutMs!), report.reason);
      node.status = 'failed';
      node.reason = why;
      // In no world yet: a new incarnation joins the way a scaled-up node does, with no round of its own.
      actions.push(...this.applyNodeDown(node, this.decideNodeDown('pending', false), { why, warning: { why }, rejoin: false }));
    }
    return actions;
  }

  /** Launched, not registered, and timed. */
  private pendingNodes(): NodeRecord[] {
    return this.data.nodes.filter((n) => n.status === 'launching' && n.pendingSince !== undefined);
  }
}

function describeFailure(event: FailureKindEvent, exitCode: number | null): string {
  const where = `node ${event.nodeId} incarnation ${event.incarnation}`;
  if (event.kind === 'node_lost') return JOB_REASON.nodeLost(where, event.data.reason);
  return JOB_REASON.nodeFailed(where, exitCode, event.data.signal, event.data.reason);
}

/** The warning for an event row no schema describes. */
function skippedEvent(r: RejectedEvent): string {
  return JOB_REASON.skippedEvent(r.id, r.kind, r.nodeId, r.incarnation, r.problem);
}
