// An in-memory world for the job workflow's own tests: the JobActivities (and the Brain's
// OptimizerActivities) as plain functions over a list of nodes and an event log the test writes.
// No store, no API, no agents: a test plays the agents and the API by emitting the events they
// would (common/events.ts), and reads what the workflow asked the world to do.
import os from 'node:os';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { BrainPlan, NodeResources, OptimizeActivityInput, OptimizerActivities } from '../common/brainPlans.ts';
import type { EventDataInput, JobEvent, NodeEventKind, RejectedEvent } from '../common/events.ts';
import type { JobActivities, LaunchedNode, NodeIdentity, RoundDeadlineCheck } from '../common/jobActivities.ts';
import type { PendingNode } from '../common/pendingNodes.ts';
import type { JobPhase } from '../common/phases.ts';
import { parseJobSpec, type JobSpec } from '../common/spec/index.ts';
import type { StepReading } from '../common/trainingProgress.ts';
import { testEvent } from '../common/eventFixtures.ts';

/** One launchNodes entry as the world received it. */
export interface Launch extends NodeIdentity {
  runKey: string;
  resources?: NodeResources;
}

/** How long an idle watchNodes call waits before it returns an empty batch (the real one: up to an hour). */
const WATCH_MAX_WAIT_MS = 1000;

export class FakeJobWorld {
  readonly events: JobEvent[] = [];
  /** Rows no schema describes, as the real watchNodes reports them (common/events.ts parseJobEvents). */
  readonly rejected: RejectedEvent[] = [];
  private lastId = 0;
  readonly launches: Launch[] = [];
  readonly removed: NodeIdentity[] = [];
  readonly rounds: { round: number; targetNodes: number; cause: string }[] = [];
  readonly brainAsked: OptimizeActivityInput[] = [];
  finished: { phase: JobPhase; reason: string | null } | undefined;
  /** The step reading every watchNodes return carries (absent: no step reported yet). */
  progress: StepReading | undefined;
  /** While set, watchNodes fails with it, as the real one does while the store cannot be reached. */
  watchError: Error | undefined;
  /** watchNodes calls (tries included) that failed with watchError. */
  watchFailures = 0;
  /** The Brain's answer; default: it refuses (4xx), so the job goes on with its spec. */
  brain: (input: OptimizeActivityInput) => BrainPlan | null = () => null;
  /** optimize calls the Brain answered (or refused); a held call counts once released. */
  brainAnswers = 0;
  /** Rounds the workflow asked to settle once their join deadline passed, and the answer it got. */
  readonly expiredRounds: number[] = [];
  roundCheck: (round: number) => RoundDeadlineCheck = () => ({ status: 'settled' });
  /** Why the backend has not started a launched node that never registered (null: it gives no reason). */
  pendingReason: string | null = null;
  private launchHeld: Promise<void> | undefined;
  private releaseLaunch: (() => void) | undefined;
  private brainHeld: Promise<void> | undefined;
  private releaseBrainCalls: (() => void) | undefined;
  private wakeWatchers: (() => void)[] = [];

  /** Launches wait until `releaseLaunches`: a test acts while the job is launching. */
  holdLaunches(): void {
    this.launchHeld = new Promise((resolve) => (this.releaseLaunch = resolve));
  }

  releaseLaunches(): void {
    this.releaseLaunch?.();
    this.launchHeld = undefined;
  }

  /** The Brain hangs: optimize calls wait until `releaseBrain`, or until they are cancelled. */
  holdBrain(): void {
    this.brainHeld = new Promise((resolve) => (this.releaseBrainCalls = resolve));
  }

  releaseBrain(): void {
    this.releaseBrainCalls?.();
    this.brainHeld = undefined;
  }

  /** Appends an event the agents or the API would write; the next watchNodes returns it. Throws when the bus would refuse its data. */
  emit<K extends NodeEventKind>(kind: K, node: NodeIdentity | null, data: EventDataInput<K>): JobEvent {
    const event = testEvent({ id: ++this.lastId, kind, nodeId: node?.id ?? null, incarnation: node?.incarnation ?? null, data, at: Date.now() });
    this.events.push(event);
    for (const wake of this.wakeWatchers.splice(0)) wake();
    return event;
  }

  /** Appends a row the real watchNodes would reject as malformed: the next watchNodes reports it. */
  emitMalformed(kind: string, node: NodeIdentity | null, problem: string): RejectedEvent {
    const row = { id: ++this.lastId, kind, nodeId: node?.id ?? null, incarnation: node?.incarnation ?? null, problem };
    this.rejected.push(row);
    for (const wake of this.wakeWatchers.splice(0)) wake();
    return row;
  }

  /** The newest incarnation launched of each node that is not removed since, by node id. */
  liveNodes(): NodeIdentity[] {
    const latest = new Map<number, NodeIdentity>();
    for (const l of this.launches) latest.set(l.id, { id: l.id, incarnation: l.incarnation });
    return [...latest.values()]
      .filter((n) => !this.removed.some((r) => r.id === n.id && r.incarnation === n.incarnation))
      .sort((a, b) => a.id - b.id);
  }

  private registered(node: NodeIdentity): boolean {
    return this.events.some((e) => e.kind === 'node_registered' && e.nodeId === node.id && e.incarnation === node.incarnation);
  }

  /** Every live node's agent registers (as the API records it). */
  registerAll(): void {
    for (const node of this.liveNodes()) this.emit('node_registered', node, { pid: 1000 + node.id, host: `host-${node.id}` });
  }

  /** The API closes the latest round with every live node, ranked by node id. */
  closeRound(): void {
    const round = this.latestRound();
    const members = this.liveNodes().map((n, groupRank) => ({ node: n.id, incarnation: n.incarnation, groupRank }));
    this.emit('round_closed', null, { round, members, excluded: [], masterAddr: '127.0.0.1', masterPort: 29500 });
  }

  /** Every live node's processes exit 0. */
  succeedAll(): void {
    for (const node of this.liveNodes()) this.emit('node_succeeded', node, { round: this.latestRound(), restarts: 0 });
  }

  /** The round the workflow opened last (0 before any). */
  private latestRound(): number {
    return this.rounds.at(-1)?.round ?? 0;
  }

  private openRoundOf(targetNodes: number, cause: string): number {
    const round = this.rounds.length + 1;
    this.rounds.push({ round, targetNodes, cause });
    this.emit('round_opened', null, { round, cause });
    return round;
  }

  activities(): JobActivities & OptimizerActivities {
    return {
      prepareJob: async ({ targetNodes }) => void this.openRoundOf(targetNodes, 'job start'),
      launchNodes: async ({ runKey, nodes }): Promise<LaunchedNode[]> => {
        await this.launchHeld;
        for (const n of nodes) {
          const known = this.launches.some((l) => l.id === n.id && l.incarnation === n.incarnation);
          if (!known) this.launches.push({ id: n.id, incarnation: n.incarnation, runKey, ...(n.resources && { resources: n.resources }) });
        }
        return nodes.map((n) => ({ id: n.id, incarnation: n.incarnation, pid: 100 + n.id }));
      },
      removeNodes: async ({ nodes }) => void this.removed.push(...nodes),
      openRound: async ({ targetNodes, cause }) => this.openRoundOf(targetNodes, cause),
      watchNodes: async ({ cursor }) => {
        if (this.watchError) {
          this.watchFailures += 1;
          throw this.watchError;
        }
        const after = () => this.events.filter((e) => e.id > cursor);
        const rejectedAfter = () => this.rejected.filter((r) => r.id > cursor);
        if (after().length === 0 && rejectedAfter().length === 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, WATCH_MAX_WAIT_MS);
            this.wakeWatchers.push(() => (clearTimeout(timer), resolve()));
          });
        }
        const rejected = rejectedAfter();
        return { events: after(), ...(rejected.length > 0 && { rejected }), ...(this.progress && { progress: this.progress }) };
      },
      expireRound: async ({ round }) => {
        this.expiredRounds.push(round);
        return this.roundCheck(round);
      },
      describePendingNodes: async ({ nodes }): Promise<PendingNode[]> =>
        nodes.filter((n) => !this.registered(n)).map((n) => ({ id: n.id, incarnation: n.incarnation, reason: this.pendingReason })),
      finishJob: async ({ phase, reason }) => {
        this.finished = { phase, reason };
        return this.progress ? { step: this.progress.step, stepsPerSecond: null, readAt: this.progress.readAt } : null;
      },
      optimize: async (input) => {
        this.brainAsked.push(input);
        if (this.brainHeld) await heldUntilCancelled(this.brainHeld);
        this.brainAnswers += 1;
        return this.brain(input);
      },
      recordLocalPlan: async () => undefined,
    };
  }
}

/** Waits for `held`, or fails when the activity is cancelled (by the workflow, or as the worker shuts down). */
async function heldUntilCancelled(held: Promise<void>): Promise<void> {
  const context = Context.current();
  // The server tells an activity of its cancellation only in answer to a heartbeat.
  const beats = setInterval(() => context.heartbeat(), 200);
  try {
    await Promise.race([held, context.cancelled]);
  } finally {
    clearInterval(beats);
  }
}

/** A Brain that does not answer: the activity fails at once, without retries. */
export function brainDown(): never {
  throw ApplicationFailure.nonRetryable('connect ECONNREFUSED 127.0.0.1:8080', 'BrainUnreachable');
}

/** A job spec for the fake world: one process per node, the given node counts and relaunch budget. */
export function jobSpec(o: { min: number; max: number; initial: number; maxNodeRelaunches: number; pendingTimeout?: string; joinTimeout?: string }): JobSpec {
  const parsed = parseJobSpec({
    metadata: { name: 'fake-world-job', user: 'tester' },
    spec: {
      nodes: { min: o.min, max: o.max, initial: o.initial },
      nprocPerNode: 1,
      entrypoint: { command: 'python3', args: ['train.py'], workdir: os.tmpdir() },
      faultTolerance: { maxNodeRelaunches: o.maxNodeRelaunches, ...(o.pendingTimeout && { pendingTimeout: o.pendingTimeout }) },
      ...(o.joinTimeout && { rendezvous: { joinTimeout: o.joinTimeout } }),
    },
  });
  if (!parsed.ok) throw new Error(`bad test spec: ${JSON.stringify(parsed.errors)}`);
  return parsed.spec;
}

/** `id#incarnation`, the way a test names a node incarnation. */
export const key = (n: { id: number; incarnation: number }) => `${n.id}#${n.incarnation}`;
