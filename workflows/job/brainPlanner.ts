// The job master's side of the Brain: ask for the initial, OOM and running plans and apply
// them to the JobState. The Brain is advisory: a few retries with backoff, then the job goes on
// with its current plan and a warning — it never fails because the Brain is down.
import { ActivityFailure, isCancellation, proxyActivities } from '@temporalio/workflow';
import type { BrainPlan, OptimizeActivityInput, OptimizerActivities } from '../../common/brainPlans.ts';
import type { JobAction, JobState } from '../../common/jobState.ts';
import type { JobSpec } from '../../common/spec/index.ts';

const brain = proxyActivities<OptimizerActivities>({
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 4 },
});

type OomAction = Extract<JobAction, { type: 'oomPlan' }>;

export function createBrainPlanner(jobId: string, spec: JobSpec, state: JobState) {
  const autoScaling = spec.spec.autoScaling;
  const intervalMs = autoScaling?.enabled ? autoScaling.interval : undefined;
  let nextRunningAt = intervalMs === undefined ? undefined : Date.now() + intervalMs;

  const ask = async (input: OptimizeActivityInput): Promise<BrainPlan | null> => {
    try {
      return await brain.optimize(input);
    } catch (err) {
      if (isCancellation(err)) throw err;
      const cause = err instanceof ActivityFailure && err.cause ? err.cause.message : err instanceof Error ? err.message : String(err);
      state.warn(`Brain unavailable for the ${input.stage} plan, going on without it: ${cause}`);
      return null;
    }
  };
  const record = (plan: BrainPlan, applied: string) =>
    state.recordPlan({ stage: plan.stage, rule: plan.rule, reason: plan.reason, applied, at: Date.now() });
  const specMemory = spec.spec.resources.memory;

  return {
    /**
     * Before launch: a plan's resources are applied when they raise the spec's (never lowered);
     * its node count only when the spec lets the Brain size the job (autoScaling.enabled).
     * Returns true when the node count changed.
     */
    async initial(): Promise<boolean> {
      const plan = await ask({ job: jobId, stage: 'initial' });
      if (!plan) return false;
      const before = state.data.targetNodes;
      const resized =
        autoScaling?.enabled === true &&
        plan.nodes !== undefined &&
        plan.nodes !== before &&
        state.scaleRefusal(plan.nodes) === undefined &&
        state.setInitialNodes(plan.nodes);
      if (resized) record(plan, `start with ${plan.nodes} nodes instead of ${before}`);
      const r = plan.resources;
      if (r && r.memoryBytes > specMemory) {
        for (const n of state.activeNodes()) state.setNodeResources(n.id, n.incarnation, { memoryBytes: r.memoryBytes, cpu: Math.max(r.cpu, spec.spec.resources.cpu) });
        record(plan, `memory ${specMemory} → ${r.memoryBytes} bytes per node`);
      } else if (!resized) record(plan, 'nothing (spec kept)');
      return resized;
    },

    /** After an OOM: the new incarnation gets the plan's memory if it is more. */
    async oom(action: OomAction): Promise<void> {
      const current = state.node(action.node.id)?.resources?.memoryBytes ?? specMemory;
      const plan = await ask({
        job: jobId, stage: 'oom', nodeId: action.node.id, incarnation: action.failedIncarnation, exitCode: action.exitCode, reason: action.reason.slice(0, 4000), memoryBytes: current,
      });
      if (!plan) return;
      const r = plan.resources;
      if (r && r.memoryBytes > current) {
        state.setNodeResources(action.node.id, action.node.incarnation, r);
        record(plan, `node ${action.node.id} incarnation ${action.node.incarnation}: memory ${current} → ${r.memoryBytes} bytes`);
      } else record(plan, 'nothing (memory at its cap)');
    },

    /** Milliseconds until the next running plan is due; undefined when auto-scaling is off. */
    waitMs(): number | undefined {
      return nextRunningAt === undefined ? undefined : Math.max(1, nextRunningAt - Date.now());
    },

    /** When due: the running plan's node count if it differs from the target (to apply like `scale`). */
    async running(targetNodes: number): Promise<number | undefined> {
      if (nextRunningAt === undefined || intervalMs === undefined || Date.now() < nextRunningAt) return undefined;
      nextRunningAt = Date.now() + intervalMs;
      if (state.data.phase !== 'RUNNING') return undefined;
      const plan = await ask({ job: jobId, stage: 'running', currentNodes: targetNodes });
      if (!plan || plan.nodes === undefined || plan.nodes === targetNodes) {
        if (plan && plan.rule !== 'insufficient-data' && state.data.plans?.at(-1)?.rule !== plan.rule) record(plan, 'nothing');
        return undefined;
      }
      const refusal = state.scaleRefusal(plan.nodes);
      if (refusal) {
        record(plan, `nothing: ${refusal}`);
        return undefined;
      }
      record(plan, `scale ${targetNodes} → ${plan.nodes} nodes`);
      return plan.nodes;
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
