// The job master's side of the Brain: ask for the initial, OOM and running plans and apply
// them to the JobState. The Brain is advisory: a few retries with backoff, then the job goes on
// with its current plan and a warning — it never fails because the Brain is down. Its fallbacks:
// an OOM still raises memory by the job master's own rule, and a missed initial plan is asked
// for again until the Brain answers. A stop ends a call to the Brain at once, as it ends a step.
// What a plan changes is decided in common/brainPlanRules.ts; this is the glue: ask, apply the
// decision to the JobState, record it, keep the timers.
import { ActivityFailure, isCancellation, patched, proxyActivities } from '@temporalio/workflow';
import { DEFAULT_OOM_FALLBACK, type BrainPlan, type OomFallback, type OptimizeActivityInput, type OptimizerActivities } from '../../common/brainPlans.ts';
import { APPLIED, initialPlan, missedInitialPlan, oomPlan, runningPlan, type PlanLimits } from '../../common/brainPlanRules.ts';
import { ROUND_CAUSE, WORKFLOW_REASON } from '../../common/jobReasons.ts';
import type { JobAction, JobState } from '../../common/jobState.ts';
import type { JobSpec } from '../../common/spec/index.ts';
import { StopRequested } from './jobSteps.ts';

const brain = proxyActivities<OptimizerActivities>({
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 4 },
});

type OomAction = Extract<JobAction, { type: 'oomPlan' }>;

/** A node count a plan asks for, to apply like `scale`, with the round cause that names the plan (absent in runs recorded before). */
export interface PlannedScale {
  nodes: number;
  cause?: string;
}

/** How often a missed initial plan is asked for again when auto-scaling gives no interval. */
const INITIAL_RETRY_MS = 30_000;

/** Runs work until it settles or a stop arrives; on a stop, cancels it and throws StopRequested (jobSteps.ts untilStop). */
type UntilStop = <T>(work: () => Promise<T>) => Promise<T>;

/** The planner of one job run. Its calls throw StopRequested when a stop arrives while the Brain is asked. */
export function createBrainPlanner(jobId: string, spec: JobSpec, state: JobState, untilStop: UntilStop) {
  const autoScaling = spec.spec.autoScaling;
  const intervalMs = autoScaling?.enabled ? autoScaling.interval : undefined;
  let nextRunningAt = intervalMs === undefined ? undefined : Date.now() + intervalMs;
  const retryMs = intervalMs ?? INITIAL_RETRY_MS;
  let nextInitialAt = state.data.brainInitialMissed ? Date.now() + retryMs : undefined;
  // Histories recorded before these fallbacks replay without them (each patch where it first acts).
  const fallbacks = () => patched('brain-fallbacks');
  // Runs recorded before a stop cut a Brain call short waited for its tries to end.
  const stoppable = <T>(call: () => Promise<T>): Promise<T> => (patched('brain-calls-stop') ? untilStop(call) : call());

  const ask = async (input: OptimizeActivityInput): Promise<BrainPlan | null> => {
    try {
      return await stoppable(() => brain.optimize(input));
    } catch (err) {
      if (isCancellation(err) || err instanceof StopRequested) throw err;
      const cause = err instanceof ActivityFailure && err.cause ? err.cause.message : err instanceof Error ? err.message : String(err);
      state.warn(WORKFLOW_REASON.brainUnavailable(input.stage, cause));
      return null;
    }
  };
  // Runs recorded before a scale's round cause named its plan replay with the plain cause.
  const planned = (plan: BrainPlan, nodes: number): PlannedScale =>
    patched('brain-plan-cause') ? { nodes, cause: ROUND_CAUSE.brainPlan(plan.stage, plan.reason, nodes) } : { nodes };
  const record = (plan: BrainPlan, applied: string) =>
    state.recordPlan({ stage: plan.stage, rule: plan.rule, reason: plan.reason, applied, at: Date.now() });
  const specMemory = spec.spec.resources.memory;
  // The spec's OOM rule for when the Brain does not answer (absent in specs from before the fields: the defaults).
  const { oomFactor, oomMemoryCap } = spec.spec.resources;
  const oomFallback: OomFallback = { factor: oomFactor ?? DEFAULT_OOM_FALLBACK.factor, capBytes: oomMemoryCap ?? DEFAULT_OOM_FALLBACK.capBytes };
  const limits: PlanLimits = {
    autoScaling: autoScaling?.enabled === true,
    spec: { memoryBytes: specMemory, cpu: spec.spec.resources.cpu },
    scaleRefusal: (nodes) => state.scaleRefusal(nodes),
  };

  return {
    /**
     * Before launch: a plan's resources are applied when they raise the spec's (never lowered);
     * its node count only when the spec lets the Brain size the job (autoScaling.enabled).
     * Returns true when the node count changed.
     */
    async initial(): Promise<boolean> {
      const plan = await ask({ job: jobId, stage: 'initial' });
      if (!plan) {
        if (fallbacks()) {
          state.data.brainInitialMissed = true;
          nextInitialAt = Date.now() + retryMs;
        }
        return false;
      }
      const { nodes, resources } = initialPlan(plan, state.data.targetNodes, limits);
      const resized = nodes !== undefined && state.setInitialNodes(nodes.count);
      if (resized) record(plan, nodes.applied);
      if (resources) {
        for (const n of state.activeNodes()) state.setNodeResources(n.id, n.incarnation, { ...resources.value });
        record(plan, resources.applied);
      } else if (!resized) record(plan, APPLIED.nothingSpecKept);
      return resized;
    },

    /** After an OOM: the new incarnation gets the plan's memory if it is more. */
    async oom(action: OomAction): Promise<void> {
      const current = state.node(action.node.id)?.resources?.memoryBytes ?? specMemory;
      const plan = await ask({
        job: jobId, stage: 'oom', nodeId: action.node.id, incarnation: action.failedIncarnation, exitCode: action.exitCode, reason: action.reason.slice(0, 4000), memoryBytes: current,
      });
      if (!plan && !fallbacks()) return;
      const cpu = state.node(action.node.id)?.resources?.cpu ?? spec.spec.resources.cpu;
      const decision = oomPlan(plan, action.node, current, cpu, oomFallback);
      if (decision.warning) state.warn(decision.warning);
      if (decision.resources) state.setNodeResources(action.node.id, action.node.incarnation, decision.resources);
      if (decision.record) record(decision.record.plan, decision.record.applied);
      const { local } = decision;
      if (local) {
        const failure = { incarnation: action.failedIncarnation, exitCode: action.exitCode, reason: action.reason.slice(0, 4000) };
        await stoppable(() => brain.recordLocalPlan({ job: jobId, plan: local, failure }));
      }
    },

    /** Milliseconds until the next plan (running, or a missed initial one) is due; undefined when none is. */
    waitMs(): number | undefined {
      const due = [nextRunningAt, nextInitialAt].filter((t): t is number => t !== undefined);
      return due.length === 0 ? undefined : Math.max(1, Math.min(...due) - Date.now());
    },

    /**
     * When due, asks again for an initial plan the Brain missed. Before the first round closed, its
     * resources apply to the nodes' next incarnations (when they raise the spec's) and its node
     * count, when the spec lets the Brain size the job, is returned to apply like `scale` — a
     * start-size the job would have had. After, its node count is offered as a running plan.
     */
    async missedInitial(targetNodes: number): Promise<PlannedScale | undefined> {
      if (nextInitialAt === undefined || Date.now() < nextInitialAt || state.terminal) return undefined;
      const plan = await ask({ job: jobId, stage: 'initial' });
      if (!plan) {
        nextInitialAt = Date.now() + retryMs;
        return undefined;
      }
      nextInitialAt = undefined;
      state.data.brainInitialMissed = false;
      // Past the first round, the plan is offered as a running plan (runs recorded before applied it as a start).
      const firstRoundClosed = state.data.roundNodes > 0 && patched('brain-initial-first-round');
      const { resources, scaleTo, applied } = missedInitialPlan(plan, targetNodes, state.activeNodes(), limits, firstRoundClosed);
      for (const { node, value } of resources) state.setNodeResources(node.id, node.incarnation, value);
      record(plan, applied);
      return scaleTo === undefined ? undefined : planned(plan, scaleTo);
    },

    /** A scale was applied: the next running plan is timed from now, so it judges the new size on a full interval of samples. */
    scaled(): void {
      if (intervalMs !== undefined && nextRunningAt !== undefined && fallbacks()) nextRunningAt = Date.now() + intervalMs;
    },

    /** When due: the running plan's node count if it differs from the target (to apply like `scale`). */
    async running(targetNodes: number): Promise<PlannedScale | undefined> {
      if (nextRunningAt === undefined || intervalMs === undefined || Date.now() < nextRunningAt) return undefined;
      nextRunningAt = Date.now() + intervalMs;
      if (state.data.phase !== 'RUNNING') return undefined;
      const plan = await ask({ job: jobId, stage: 'running', currentNodes: targetNodes });
      // Timed from the answer, not the request: retries while the Brain was slow do not eat the next interval.
      if (fallbacks()) nextRunningAt = Date.now() + intervalMs;
      const { scaleTo, applied } = runningPlan(plan, targetNodes, state.data.plans?.at(-1)?.rule, limits.scaleRefusal);
      if (plan && applied !== undefined) record(plan, applied);
      return plan && scaleTo !== undefined ? planned(plan, scaleTo) : undefined;
    },

    /** Launch entries with the resources plans gave the nodes. */
    withResources<N extends { id: number; incarnation: number }>(nodes: N[]) {
      return nodes.map((n) => {
        const r = state.node(n.id)?.resources;
        return r ? { ...n, resources: r } : n;
      });
    },
  };
}
