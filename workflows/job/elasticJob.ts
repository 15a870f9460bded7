// The job master: one long-running workflow per training job. A thin shell over JobState:
// it wires messages to the state, performs the actions the state asks for, and waits.
import { createBrainPlanner } from './brainPlanner.ts';
import { createJobSteps, StopRequested, summarized, unhealableOf } from './jobSteps.ts';
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  ContinueAsNew,
  isCancellation,
  patched,
  setHandler,
  setCurrentDetails,
  sleep,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { JobEvent, RejectedEvent } from '../../common/events.ts';
import { ROUND_CAUSE, WORKFLOW_REASON } from '../../common/jobReasons.ts';
import { watchResultOf } from '../../common/jobActivities.ts';
import { type JobAction, JobState, type JobStateData, initialJobState } from '../../common/jobState.ts';
import { type ActionContext, jobCurrentDetails, launchSummary, nodeList, removeSummary } from '../../common/jobSummaries.ts';
import { RoverBackend, RoverJobName, RoverJobState, RoverUser, RoverWorldSize } from '../../common/searchAttributes.ts';
import { recoveredLine, retryingLine, unhealableReason } from '../../common/unhealableErrors.ts';
import {
  type ElasticJobInput,
  JOB_FAILED,
  type JobStatus,
  SCALE_REFUSED,
  type ScaleRequest,
  scaleSignal,
  scaleUpdate,
  statusQuery,
  stopSignal,
} from './messages.ts';

/** What travels through continue-as-new besides the spec (exported for the test that checks every field survives it). */
export interface Carried {
  state: JobStateData;
  /** Random, not secret: the worker derives the job's token from it (common/tokens.ts). */
  runKey: string;
  /** The name of runKey before it was renamed, in runs carried over from then. */
  token?: string;
  pendingScale: QueuedScale[];
  stopReason: string | null;
}

/** A scale waiting its turn: a user's request, or a Brain plan with the round cause that names it (ROUND_CAUSE.brainPlan). */
interface QueuedScale extends ScaleRequest {
  cause?: string;
}

export async function elasticJob(input: ElasticJobInput): Promise<JobStatus> {
  const { jobId, spec } = input;
  const carried = input.carried as Carried | undefined;
  const state = new JobState(carried?.state ?? initialJobState(spec.spec.nodes.initial), {
    minNodes: spec.spec.nodes.min,
    maxNodes: spec.spec.nodes.max,
    unit: spec.spec.nodes.unit,
    nprocPerNode: spec.spec.nprocPerNode,
    maxNodeRelaunches: spec.spec.faultTolerance.maxNodeRelaunches,
    joinTimeoutMs: spec.spec.rendezvous.joinTimeout,
    // Absent in specs submitted before the field existed: such a job's pending nodes are not timed.
    ...(spec.spec.faultTolerance.pendingTimeout !== undefined && { pendingTimeoutMs: spec.spec.faultTolerance.pendingTimeout }),
    // Histories recorded before it replay with the job waiting on nodes outside the world.
    worldEndsJob: patched('world-ends-job'),
    // Histories recorded before it replay with the workflow re-checking spec.nodes.min itself.
    checkDecidesExclusion: patched('check-decides-exclusion'),
  });
  const runKey = carried?.runKey ?? carried?.token ?? uuid4();
  const pendingScale: QueuedScale[] = carried?.pendingScale ?? [];
  let stopReason: string | null = carried?.stopReason ?? null;

  const status = (): JobStatus => ({
    jobId,
    workflowId: workflowInfo().workflowId,
    phase: state.data.phase,
    round: state.data.round,
    worldSize: state.worldSize(),
    targetNodes: state.data.targetNodes,
    nodes: state.data.nodes.map((n) => ({
      id: n.id,
      rank: n.rank,
      incarnation: n.incarnation,
      status: n.status,
      restarts: n.restarts,
      pid: n.pid,
      exitCode: n.exitCode,
      reason: n.reason,
      ...(n.check && { check: n.check }),
      ...(n.lastError && { lastError: n.lastError }),
    })),
    nodeRelaunches: state.data.nodeRelaunches,
    processRestarts: state.data.processRestarts,
    reason: state.data.reason,
    warnings: state.data.warnings,
    plans: state.data.plans ?? [],
    checkpointStep: state.data.checkpointStep ?? 0,
    epochsDone: state.data.epochsDone ?? 0,
  });

  setHandler(statusQuery, status);
  setHandler(stopSignal, ({ reason } = {}) => {
    stopReason ??= reason ?? WORKFLOW_REASON.stoppedByUser;
  });
  setHandler(scaleSignal, (request) => {
    const refusal = state.scaleRefusal(request.nodes);
    if (refusal) state.warn(WORKFLOW_REASON.scaleSignalIgnored(refusal));
    // Only the request's own fields: a round cause naming a plan is the planner's to write, not a signal's.
    else pendingScale.push({ nodes: request.nodes, requestId: request.requestId });
  });
  /** Accepted scale Updates the main loop then refused, until their handlers answer (never carried: handlers finish first). */
  const refusedUpdates: { request: ScaleRequest; reason: string }[] = [];
  setHandler(
    scaleUpdate,
    async (request) => {
      pendingScale.push(request);
      await condition(() => !pendingScale.includes(request));
      // Valid when accepted, refused by the time its turn came (a stop, another scale before it).
      const refused = refusedUpdates.findIndex((r) => r.request === request);
      if (refused >= 0) {
        const { reason } = refusedUpdates.splice(refused, 1)[0]!;
        throw ApplicationFailure.create({ type: SCALE_REFUSED, message: reason, nonRetryable: true });
      }
      return status();
    },
    {
      validator: (request) => {
        const refusal = state.scaleRefusal(request?.nodes);
        if (refusal) throw ApplicationFailure.create({ type: SCALE_REFUSED, message: refusal, nonRetryable: true });
      },
    },
  );

  let published = { phase: '', worldSize: -1 };
  const publish = () => {
    // Not a command: the Web UI reads it through the built-in metadata query, replay is unaffected.
    setCurrentDetails(jobCurrentDetails(state.data, state.worldSize(), spec.spec.maxSteps));
    const now = { phase: state.data.phase, worldSize: state.worldSize() };
    if (now.phase === published.phase && now.worldSize === published.worldSize) return;
    published = now;
    upsertSearchAttributes([
      { key: RoverJobName, value: jobId },
      { key: RoverJobState, value: now.phase },
      { key: RoverWorldSize, value: now.worldSize },
      { key: RoverUser, value: spec.metadata.user },
      { key: RoverBackend, value: spec.spec.backend },
    ]);
  };

  // Deadlines that decide the job's fate are durable timers here, so they fire with no agent alive
  // to ask the API and across worker restarts. Histories recorded before them replay without.
  const deadlines = patched('durable-deadlines');
  // A FAILED job fails its workflow, so Temporal's status is the job's outcome; histories recorded
  // while every job completed replay as they ran.
  const failedJobsFail = patched('failed-job-fails-workflow');
  // Steps race a stop, and steps and the watch are retried on a bounded schedule the status
  // shows; runs recorded before wait on each activity as it retries forever.
  const { step, untilStop, watch: watchNodes } = createJobSteps({
    bounded: patched('bounded-job-steps'),
    boundedWatch: patched('bounded-watch'),
    stopped: () => stopReason !== null,
    retrying: (activity, message, pauseS) => {
      // One line per failing step: its latest error replaces the one before.
      if (state.data.warnings.at(-1)?.startsWith(`${activity} is failing`)) state.data.warnings.pop();
      state.warn(retryingLine(activity, message, pauseS));
      publish();
    },
    recovered: (activity, failedCalls) => state.warn(recoveredLine(activity, failedCalls)),
  });
  const planner = createBrainPlanner(jobId, spec, state, untilStop);
  /** The job's end as Temporal sees it: FAILED throws JobFailed carrying the final status. */
  const outcome = (): JobStatus => {
    const final = status();
    if (final.phase === 'FAILED' && failedJobsFail) {
      throw ApplicationFailure.create({ type: JOB_FAILED, message: final.reason ?? WORKFLOW_REASON.failedWithoutReason, details: [final], nonRetryable: true });
    }
    return final;
  };
  const launchedAt = () => (deadlines ? Date.now() : undefined);
  /** One timer at the state's next deadline; re-armed only when that deadline moves. */
  let timer: { at: number; scope: CancellationScope; fired: boolean } | undefined;
  const armDeadline = () => {
    const at = state.nextDeadline();
    if (timer && timer.at === at && !timer.fired) return;
    timer?.scope.cancel();
    timer = undefined;
    if (at === undefined) return;
    const armed = { at, scope: new CancellationScope(), fired: false };
    armed.scope
      .run(() => sleep(Math.max(1, at - Date.now()), { summary: 'next deadline: rendezvous join or pending node' }))
      .then(
        () => void (armed.fired = true),
        () => undefined, // cancelled: the deadline moved
      );
    timer = armed;
  };
  /** Settles what is due: a round past its join deadline, nodes pending past pendingTimeout. */
  const checkDeadlines = async () => {
    const now = Date.now();
    const round = state.roundDue(now);
    if (round !== undefined) state.roundChecked(round, await step(`settle rendezvous round ${round}: its join deadline passed`, (a) => a.expireRound({ jobId, round })), Date.now());
    const due = state.pendingDue(now);
    if (due.length > 0 && !state.terminal) {
      const why = `ask why ${nodeList(due.map((n) => n.id))} ${due.length === 1 ? 'is' : 'are'} still pending past spec.faultTolerance.pendingTimeout`;
      const pending = await step(why, (a) => a.describePendingNodes({ jobId, nodes: due }));
      await perform(state.pendingTimedOut(pending, now), { before: [...state.data.nodes] });
    }
  };

  /** Performs the state's actions; `ctx` says why, for their summaries. */
  const perform = async (actions: JobAction[], ctx: ActionContext = {}) => {
    for (const action of actions) {
      if (action.type === 'remove') await step(removeSummary(action.nodes, ctx), (a) => a.removeNodes({ jobId, nodes: action.nodes }));
      else if (action.type === 'openRound') {
        await step(`open a rendezvous round for ${state.data.targetNodes} nodes: ${action.cause}`, (a) => a.openRound({ jobId, targetNodes: state.data.targetNodes, cause: action.cause }));
      } else if (action.type === 'oomPlan') await planner.oom(action);
      else state.markLaunched(await step(launchSummary(action.nodes, ctx), (a) => a.launchNodes({ jobId, runKey, nodes: planner.withResources(action.nodes) })), launchedAt());
    }
  };

  const scaleTo = async (request: QueuedScale) => {
    const from = state.data.targetNodes;
    await perform(state.scale(request.nodes, request.requestId, request.cause), { why: `scale ${from} → ${request.nodes}` });
  };
  /** Records the final phase, tears every node down, and keeps the job's last step for the details. */
  const finish = async () => {
    const { phase, reason } = state.data;
    const last = await summarized(`finish the job ${phase}${reason ? `: ${reason}` : ''}; tear its nodes down`).finishJob({ jobId, phase, reason });
    if (last) state.data.progress = last;
  };

  const historyFull = () => {
    const info = workflowInfo();
    const cap = input.continueAsNewAfterEvents;
    return info.continueAsNewSuggested || (cap !== undefined && info.historyLength >= cap);
  };

  try {
    publish();
    if (!carried) {
      const prepare = { jobId, workflowId: workflowInfo().workflowId, spec, runKey, targetNodes: state.data.targetNodes };
      await step(`record job ${jobId}, open rendezvous round 1 for ${state.data.targetNodes} nodes`, (a) => a.prepareJob(prepare));
      state.data.phase = 'LAUNCHING';
      publish();
      // Histories recorded before the Brain existed replay without this step.
      if (patched('brain-initial-plan') && (await planner.initial())) {
        await step(`open a rendezvous round for ${state.data.targetNodes} nodes: the Brain's initial plan`, (a) => a.openRound({ jobId, targetNodes: state.data.targetNodes, cause: ROUND_CAUSE.initialPlan }));
      }
      const first = state.activeNodes().map((n) => ({ id: n.id, incarnation: n.incarnation }));
      state.markLaunched(await step(launchSummary(first, { why: 'job start' }), (a) => a.launchNodes({ jobId, runKey, nodes: planner.withResources(first) })), launchedAt());
      publish();
    }
    let watch: Promise<void> | undefined;
    let events: { events: JobEvent[]; rejected: RejectedEvent[] } | undefined;
    let watchError: unknown;
    while (!state.terminal) {
      if (stopReason !== null) {
        state.finish('STOPPED', stopReason);
        break;
      }
      if (!watch) {
        events = undefined;
        const watchSummary = `wait for node events after #${state.data.cursor} (failures, rounds, checkpoints)`;
        watch = watchNodes(watchSummary, { jobId, cursor: state.data.cursor, phase: state.data.phase, stepKnown: state.data.progress !== undefined }).then(
          (result) => {
            const { events: batch, rejected = [], progress } = watchResultOf(result);
            // The latest step rides on every return (no event of its own); a return that saw no
            // step (every node restarting) keeps the last reading, which says when it was read.
            if (progress) state.data.progress = progress;
            events = { events: batch, rejected };
          },
          (err: unknown) => void (watchError = err),
        );
      }
      if (deadlines) armDeadline();
      const woke = () =>
        events !== undefined || watchError !== undefined || pendingScale.length > 0 || stopReason !== null || timer?.fired === true;
      const planWait = planner.waitMs();
      if (planWait === undefined) await condition(woke);
      else await condition(woke, planWait);
      if (watchError !== undefined) throw watchError;
      if (events !== undefined) {
        const batch = events;
        watch = undefined;
        const before = [...state.data.nodes];
        await perform(state.applyEvents(batch.events, batch.rejected), { before });
      }
      if (deadlines && !state.terminal && stopReason === null) await checkDeadlines();
      // Auto-scaling: a due running plan goes the way of a scale signal.
      const planned = state.terminal || stopReason !== null ? undefined : await planner.running(state.data.targetNodes);
      if (planned !== undefined) pendingScale.push({ ...planned, requestId: `brain-running-${uuid4()}` });
      // An initial plan the Brain missed, asked for again now that it may be back.
      const initial = state.terminal || stopReason !== null ? undefined : await planner.missedInitial(state.data.targetNodes);
      if (initial !== undefined) pendingScale.push({ ...initial, requestId: `brain-initial-${uuid4()}` });
      while (pendingScale.length > 0 && !state.terminal && stopReason === null) {
        const request = pendingScale[0]!;
        const refusal = state.scaleRefusal(request.nodes);
        if (refusal) {
          state.warn(WORKFLOW_REASON.scaleIgnored(request.nodes, refusal));
          refusedUpdates.push({ request, reason: refusal });
        }
        else {
          await scaleTo(request);
          planner.scaled();
        }
        pendingScale.shift();
      }
      publish();
      if (!watch && !state.terminal && stopReason === null && historyFull()) {
        await condition(allHandlersFinished);
        const next: Carried = { state: state.data, runKey, pendingScale, stopReason };
        return await continueAsNew<typeof elasticJob>({ ...input, carried: next });
      }
    }
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    const unhealable = unhealableOf(err);
    if (err instanceof StopRequested) state.finish('STOPPED', stopReason);
    else if (!isCancellation(err)) {
      // An error no retry heals says what to fix; others keep the generic words.
      state.finish('FAILED', unhealable ? unhealableReason(unhealable.kind, unhealable.activity, unhealable.message) : WORKFLOW_REASON.masterError(err instanceof Error ? err.message : String(err)));
      await CancellationScope.nonCancellable(() => finish());
      publish();
      if (failedJobsFail) return outcome();
      throw ApplicationFailure.nonRetryable(state.data.reason ?? WORKFLOW_REASON.masterErrorWithoutReason);
    }
    else state.finish('STOPPED', WORKFLOW_REASON.cancelled);
  }
  await CancellationScope.nonCancellable(() => finish());
  publish();
  return outcome();
}
