// What the job master does with a Brain plan, as pure decisions: the plan (or null when the Brain
// did not answer) and the job's facts in, what to change and what to record out. The workflow's
// brainPlanner asks the Brain, applies a decision to the JobState and keeps the timers; these rules
// do no I/O and read no clock, so they are tested as tables.
import { DEFAULT_OOM_FALLBACK, localOomPlan, type BrainPlan, type NodeResources, type OomFallback } from './brainPlans.ts';

/** What the spec lets a plan change. */
export interface PlanLimits {
  /** spec.autoScaling.enabled: the Brain may size the job. */
  autoScaling: boolean;
  /** spec.resources per node (memory in bytes). */
  spec: NodeResources;
  /** JobState.scaleRefusal: why a node count is not acceptable now, or undefined. */
  scaleRefusal: (nodes: number) => string | undefined;
}

/** A node as the rules see it: its identity and the resources a plan gave it (absent or null: the spec's). */
export interface PlanNode {
  id: number;
  incarnation: number;
  resources?: NodeResources | null;
}

/** The `applied` line recorded with each plan (shown in `rover status`). */
export const APPLIED = {
  /** The Brain's plan changed nothing the spec allows it to. */
  nothingSpecKept: 'nothing (spec kept)',
  /** A running plan that keeps the size (recorded once per rule). */
  nothing: 'nothing',
  /** An OOM plan that would not raise the node's memory. */
  nothingAtCap: 'nothing (memory at its cap)',
  refused: (refusal: string) => `nothing: ${refusal}`,
  startWith: (nodes: number, before: number) => `start with ${nodes} nodes instead of ${before}`,
  memoryPerNode: (from: number, to: number) => `memory ${from} → ${to} bytes per node`,
  memoryFromNextIncarnation: (from: number, to: number) => `memory ${from} → ${to} bytes per node from each node's next incarnation`,
  scale: (from: number, to: number) => `scale ${from} → ${to} nodes`,
  nodeMemory: (node: PlanNode, from: number, to: number) => `node ${node.id} incarnation ${node.incarnation}: memory ${from} → ${to} bytes`,
  /** Suffix of nodeMemory when the job master made the plan itself. */
  byJobMaster: ' (decided by the job master)',
  askedAgain: (applied: string[]) => `asked again once the Brain answered: ${applied.length > 0 ? applied.join('; ') : 'nothing (spec kept)'}`,
  /** A missed initial plan that came after the first round closed, offered as a running plan (`applied`: what that did). */
  offeredAsRunning: (applied: string) => `asked again once the Brain answered, after the first round: offered as a running plan: ${applied}`,
} as const;

/** Rule id of running plans that had too few samples to judge: never recorded as 'nothing'. */
export const INSUFFICIENT_DATA_RULE = 'insufficient-data';

/** The plan's resources when they raise the spec's memory (never lowered; cpu at least the spec's). */
export function raisedResources(plan: BrainPlan, spec: NodeResources): NodeResources | undefined {
  const r = plan.resources;
  return r && r.memoryBytes > spec.memoryBytes ? { memoryBytes: r.memoryBytes, cpu: Math.max(r.cpu, spec.cpu) } : undefined;
}

/** The plan's node count when the spec lets the Brain size the job, it differs from `targetNodes`, and it is acceptable. */
export function plannedNodes(plan: BrainPlan, targetNodes: number, limits: PlanLimits): number | undefined {
  const { nodes } = plan;
  return limits.autoScaling && nodes !== undefined && nodes !== targetNodes && limits.scaleRefusal(nodes) === undefined ? nodes : undefined;
}

/**
 * The initial plan, before launch: start with `nodes.count` nodes (if the job has not begun
 * launching; the workflow knows) and give every node `resources`. Record `nodes.applied` when the
 * size changed, `resources.applied` when given, `APPLIED.nothingSpecKept` when neither happened.
 */
export function initialPlan(plan: BrainPlan, targetNodes: number, limits: PlanLimits): {
  nodes?: { count: number; applied: string };
  resources?: { value: NodeResources; applied: string };
} {
  const count = plannedNodes(plan, targetNodes, limits);
  const raised = raisedResources(plan, limits.spec);
  return {
    ...(count !== undefined && { nodes: { count, applied: APPLIED.startWith(count, targetNodes) } }),
    ...(raised && { resources: { value: raised, applied: APPLIED.memoryPerNode(limits.spec.memoryBytes, raised.memoryBytes) } }),
  };
}

/**
 * An initial plan asked for again after the Brain missed it, while the job runs. Before the first
 * round closed (`firstRoundClosed` false) it still applies as a start would have: its resources go
 * to each node whose memory they raise (from its next incarnation), its node count is applied like
 * a scale. After, a start plan comes too late: its node count is offered as a running plan, under
 * runningPlan's rules and only when the spec lets the Brain size the job; memory is left to OOM
 * plans. One `applied` line says what happened.
 */
export function missedInitialPlan(plan: BrainPlan, targetNodes: number, nodes: PlanNode[], limits: PlanLimits, firstRoundClosed = false): {
  resources: { node: PlanNode; value: NodeResources }[];
  scaleTo?: number;
  applied: string;
} {
  if (firstRoundClosed) {
    const offer = limits.autoScaling ? runningPlan(plan, targetNodes, undefined, limits.scaleRefusal) : {};
    return { resources: [], ...(offer.scaleTo !== undefined && { scaleTo: offer.scaleTo }), applied: APPLIED.offeredAsRunning(offer.applied ?? APPLIED.nothingSpecKept) };
  }
  const raised = raisedResources(plan, limits.spec);
  // A copy each, as each node's record owns its resources.
  const resources = raised
    ? nodes.filter((n) => (n.resources?.memoryBytes ?? limits.spec.memoryBytes) < raised.memoryBytes).map((node) => ({ node, value: { ...raised } }))
    : [];
  const scaleTo = plannedNodes(plan, targetNodes, limits);
  const applied = [
    ...(raised ? [APPLIED.memoryFromNextIncarnation(limits.spec.memoryBytes, raised.memoryBytes)] : []),
    ...(scaleTo !== undefined ? [APPLIED.scale(targetNodes, scaleTo)] : []),
  ];
  return { resources, ...(scaleTo !== undefined && { scaleTo }), applied: APPLIED.askedAgain(applied) };
}

/**
 * After an OOM, for the node's new incarnation (`memoryBytes` and `cpu`: what it has now): the
 * Brain's plan when it raises memory; with no answer, the job master's own rule (`fallback`: the
 * spec's factor and cap, or the defaults; `local`: record it as the job's plan), or a warning when
 * the node is at that cap already.
 */
export function oomPlan(plan: BrainPlan | null, node: PlanNode, memoryBytes: number, cpu: number, fallback: OomFallback = DEFAULT_OOM_FALLBACK): {
  resources?: NodeResources;
  record?: { plan: BrainPlan; applied: string };
  local?: BrainPlan;
  warning?: string;
} {
  if (!plan) {
    const local = localOomPlan(node.id, memoryBytes, cpu, fallback);
    if (!local) return { warning: `node ${node.id} ran out of memory at ${memoryBytes} bytes, the job master's cap ${fallback.capBytes}, and the Brain did not answer: memory unchanged` };
    const resources = local.resources!;
    return { resources, record: { plan: local, applied: APPLIED.nodeMemory(node, memoryBytes, resources.memoryBytes) + APPLIED.byJobMaster }, local };
  }
  const r = plan.resources;
  if (r && r.memoryBytes > memoryBytes) return { resources: r, record: { plan, applied: APPLIED.nodeMemory(node, memoryBytes, r.memoryBytes) } };
  return { record: { plan, applied: APPLIED.nothingAtCap } };
}

/**
 * A running plan for a job at `targetNodes`: the size to scale to, if any, and what to record
 * (undefined: nothing, e.g. the same 'nothing' as the latest plan's rule, or no answer).
 */
export function runningPlan(plan: BrainPlan | null, targetNodes: number, lastRule: string | undefined, scaleRefusal: PlanLimits['scaleRefusal']): {
  scaleTo?: number;
  applied?: string;
} {
  if (!plan) return {};
  if (plan.nodes === undefined || plan.nodes === targetNodes) {
    return plan.rule !== INSUFFICIENT_DATA_RULE && lastRule !== plan.rule ? { applied: APPLIED.nothing } : {};
  }
  const refusal = scaleRefusal(plan.nodes);
  if (refusal) return { applied: APPLIED.refused(refusal) };
  return { scaleTo: plan.nodes, applied: APPLIED.scale(targetNodes, plan.nodes) };
}
