// The job master's side of the Brain: ask for the initial, OOM and running plans and apply
// them to the JobState. The Brain is advisory: a few retries with backoff, then the job goes on
// with its current plan and a warning — it never fails because the Brain is down. Its fallbacks:
// an OOM still raises memory by the job master's own rule, and a missed initial plan is asked
// for again until the Brain answers.
import { ActivityFailure, isCancellation, patched, proxyActivities } from '@temporalio/workflow';
import { localOomPlan, type BrainPlan, type OptimizeActivityInput, type OptimizerActivities } from '../../common/brainPlans.ts';
import type { JobAction, JobState } from '../../common/jobState.ts';
import type { JobSpec } from '../../common/spec/index.ts';

const brain = proxyActivities<OptimizerActivities>({
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 4 },
});

type OomAction = Extract<JobAction, { type: 'oomPlan' }>;

/** How often a missed initial plan is asked for again when auto-scaling gives no interval. */
const INITIAL_RETRY_MS = 30_000;

export function createBrainPlanner(jobId: string, spec: JobSpec, state: JobState) {
  const autoScaling = spec.spec.autoScaling;
  const intervalMs = autoScaling?.enabled ? autoScaling.interval : undefined;
  let nextRunningAt = intervalMs === undefined ? undefined : Date.now() + intervalMs;
  const retryMs = intervalMs ?? INITIAL_RETRY_MS;
  let nextInitialAt = state.data.brainInitialMissed ? Date.now() + retryMs : undefined;
  // Histories recorded before these fallbacks replay without them (each patch where it first acts).
  const fallbacks = () => patched('brain-fallbacks');

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
      if (!plan) {
        if (fallbacks()) {
          state.data.brainInitialMissed = true;
          nextInitialAt = Date.now() + retryMs;
        }
        return false;
      }
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
      if (!plan) {
        if (!fallbacks()) return;
        const cpu = state.node(action.node.id)?.resources?.cpu ?? spec.spec.resources.cpu;
        const local = localOomPlan(action.node.id, current, cpu);
        if (!local) {
          state.warn(`node ${action.node.id} ran out of memory at the job master's cap ${current} bytes, and the Brain did not answer: memory unchanged`);
          return;
        }
        state.setNodeResources(action.node.id, action.node.incarnation, local.resources!);
        record(local, `node ${action.node.id} incarnation ${action.node.incarnation}: memory ${current} → ${local.resources!.memoryBytes} bytes (decided by the job master)`);
        await brain.recordLocalPlan({ job: jobId, plan: local });
        return;
      }
      const r = plan.resources;
      if (r && r.memoryBytes > current) {
        state.setNodeResources(action.node.id, action.node.incarnation, r);
        record(plan, `node ${action.node.id} incarnation ${action.node.incarnation}: memory ${current} → ${r.memoryBytes} bytes`);
      } else record(plan, 'nothing (memory at its cap)');
    },

    /** Milliseconds until the next plan (running, or a missed initial one) is due; undefined when none is. */
    waitMs(): number | undefined {
      const due = [nextRunningAt, nextInitialAt].filter((t): t is number => t !== undefined);
      return due.length === 0 ? undefined : Math.max(1, Math.min(...due) - Date.now());
    },

    /**
     * When due, asks again for an initial plan the Brain missed. Its resources apply to the nodes'
     * next incarnations (when they raise the spec's); its node count, when the spec lets the Brain
     * size the job, is returned to apply like `scale` — a start-size the job would have had.
     */
    async missedInitial(targetNodes: number): Promise<number | undefined> {
      if (nextInitialAt === undefined || Date.now() < nextInitialAt || state.terminal) return undefined;
      const plan = await ask({ job: jobId, stage: 'initial' });
      if (!plan) {
        nextInitialAt = Date.now() + retryMs;
        return undefined;
      }
      nextInitialAt = undefined;
      state.data.brainInitialMissed = false;
      const r = plan.resources;
      const applied: string[] = [];
      if (r && r.memoryBytes > specMemory) {
        for (const n of state.activeNodes()) {
          if ((n.resources?.memoryBytes ?? specMemory) < r.memoryBytes) state.setNodeResources(n.id, n.incarnation, { memoryBytes: r.memoryBytes, cpu: Math.max(r.cpu, spec.spec.resources.cpu) });
        }
        applied.push(`memory ${specMemory} → ${r.memoryBytes} bytes per node from each node's next incarnation`);
      }
      const resize = autoScaling?.enabled === true && plan.nodes !== undefined && plan.nodes !== targetNodes && state.scaleRefusal(plan.nodes) === undefined;
      if (resize) applied.push(`scale ${targetNodes} → ${plan.nodes} nodes`);
      record(plan, applied.length > 0 ? `asked again once the Brain answered: ${applied.join('; ')}` : 'asked again once the Brain answered: nothing (spec kept)');
      return resize ? plan.nodes : undefined;
    },

    /** A scale was applied: the next running plan is timed from now, so it judges the new size on a full interval of samples. */
    scaled(): void {
      if (intervalMs !== undefined && nextRunningAt !== undefined && fallbacks()) nextRunningAt = Date.now() + intervalMs;
    },

    /** When due: the running plan's node count if it differs from the target (to apply like `scale`). */
    async running(targetNodes: number): Promise<number | undefined> {
      if (nextRunningAt === undefined || intervalMs === undefined || Date.now() < nextRunningAt) return undefined;
      nextRunningAt = Date.now() + intervalMs;
      if (state.data.phase !== 'RUNNING') return undefined;
      const plan = await ask({ job: jobId, stage: 'running', currentNodes: targetNodes });
      // Timed from the answer, not the request: retries while the Brain was slow do not eat the next interval.
      if (fallbacks()) nextRunningAt = Date.now() + intervalMs;
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
