// The Brain plan rules as tables: a plan and the job's facts in, the change and its record out.
import { describe, expect, it } from 'vitest';
import { LOCAL_MEMORY_CAP_BYTES, LOCAL_OOM_RULE, type BrainPlan, type NodeResources, type OomFallback } from './brainPlans.ts';
import { initialPlan, missedInitialPlan, oomPlan, runningPlan, type PlanLimits, type PlanNode } from './brainPlanRules.ts';

const GiB = 2 ** 30;
const SPEC: NodeResources = { memoryBytes: 2 * GiB, cpu: 2 };

/** A plan from the Brain; the stage does not matter to the rules. */
const plan = (o: Partial<BrainPlan> = {}): BrainPlan => ({ stage: 'initial', rule: 'r1', reason: 'because', ...o });

/** Limits of a spec with nodes in [1, 4]; `autoScaling` off unless asked. */
const limits = (o: Partial<Omit<PlanLimits, 'scaleRefusal'>> & { max?: number } = {}): PlanLimits => ({
  autoScaling: false,
  spec: SPEC,
  ...o,
  scaleRefusal: (n) => (n >= 1 && n <= (o.max ?? 4) ? undefined : `cannot scale to ${n} nodes`),
});

const node = (id: number, memoryBytes?: number): PlanNode => ({ id, incarnation: 1, ...(memoryBytes !== undefined && { resources: { memoryBytes, cpu: 2 } }) });

describe('initialPlan', () => {
  it.each([
    { name: 'keeps the spec when the plan has nothing to offer', plan: plan(), limits: limits(), expected: {} },
    { name: 'ignores a node count when the spec does not let the Brain size the job', plan: plan({ nodes: 3 }), limits: limits(), expected: {} },
    {
      name: 'starts with the planned nodes when autoScaling is on',
      plan: plan({ nodes: 3 }),
      limits: limits({ autoScaling: true }),
      expected: { nodes: { count: 3, applied: 'start with 3 nodes instead of 2' } },
    },
    { name: 'ignores a count equal to the target', plan: plan({ nodes: 2 }), limits: limits({ autoScaling: true }), expected: {} },
    { name: 'ignores a count the spec refuses', plan: plan({ nodes: 9 }), limits: limits({ autoScaling: true }), expected: {} },
    {
      name: 'raises memory, keeping at least the spec cpu',
      plan: plan({ resources: { memoryBytes: 4 * GiB, cpu: 1 } }),
      limits: limits(),
      expected: { resources: { value: { memoryBytes: 4 * GiB, cpu: 2 }, applied: `memory ${2 * GiB} → ${4 * GiB} bytes per node` } },
    },
    { name: 'never lowers memory', plan: plan({ resources: { memoryBytes: GiB, cpu: 8 } }), limits: limits(), expected: {} },
    {
      name: 'does both at once',
      plan: plan({ nodes: 4, resources: { memoryBytes: 3 * GiB, cpu: 4 } }),
      limits: limits({ autoScaling: true }),
      expected: {
        nodes: { count: 4, applied: 'start with 4 nodes instead of 2' },
        resources: { value: { memoryBytes: 3 * GiB, cpu: 4 }, applied: `memory ${2 * GiB} → ${3 * GiB} bytes per node` },
      },
    },
  ])('$name', ({ plan, limits, expected }) => {
    expect(initialPlan(plan, 2, limits)).toEqual(expected);
  });
});

describe('missedInitialPlan', () => {
  const asked = 'asked again once the Brain answered: ';
  it.each([
    { name: 'records that nothing changed', plan: plan(), limits: limits(), raised: [], scaleTo: undefined, applied: `${asked}nothing (spec kept)` },
    {
      name: 'raises memory of nodes below the plan only, from their next incarnation',
      plan: plan({ resources: { memoryBytes: 4 * GiB, cpu: 1 } }),
      limits: limits(),
      raised: [0, 2],
      scaleTo: undefined,
      applied: `${asked}memory ${2 * GiB} → ${4 * GiB} bytes per node from each node's next incarnation`,
    },
    { name: 'scales like a scale request when autoScaling is on', plan: plan({ nodes: 4 }), limits: limits({ autoScaling: true }), raised: [], scaleTo: 4, applied: `${asked}scale 3 → 4 nodes` },
    { name: 'does not scale past the spec', plan: plan({ nodes: 5 }), limits: limits({ autoScaling: true }), raised: [], scaleTo: undefined, applied: `${asked}nothing (spec kept)` },
    {
      name: 'says both in one line',
      plan: plan({ nodes: 1, resources: { memoryBytes: 16 * GiB, cpu: 1 } }),
      limits: limits({ autoScaling: true }),
      raised: [0, 1, 2],
      scaleTo: 1,
      applied: `${asked}memory ${2 * GiB} → ${16 * GiB} bytes per node from each node's next incarnation; scale 3 → 1 nodes`,
    },
  ])('$name', ({ plan, limits, raised, scaleTo, applied }) => {
    const nodes = [node(0), node(1, 8 * GiB), node(2, 3 * GiB)];
    const decision = missedInitialPlan(plan, 3, nodes, limits);
    expect(decision.resources.map((r) => r.node.id)).toEqual(raised);
    for (const r of decision.resources) expect(r.value).toEqual({ memoryBytes: plan.resources!.memoryBytes, cpu: 2 });
    expect([decision.scaleTo, decision.applied]).toEqual([scaleTo, applied]);
  });
});

describe('missedInitialPlan after the first round closed', () => {
  const offered = 'asked again once the Brain answered, after the first round: offered as a running plan: ';
  it.each([
    { name: 'offers its node count as a running plan', plan: plan({ nodes: 4 }), limits: limits({ autoScaling: true }), scaleTo: 4, applied: `${offered}scale 3 → 4 nodes` },
    { name: 'records the refusal of a count the spec forbids', plan: plan({ nodes: 5 }), limits: limits({ autoScaling: true }), scaleTo: undefined, applied: `${offered}nothing: cannot scale to 5 nodes` },
    { name: 'keeps a count equal to the target', plan: plan({ nodes: 3 }), limits: limits({ autoScaling: true }), scaleTo: undefined, applied: `${offered}nothing` },
    { name: 'offers nothing when the spec does not let the Brain size the job', plan: plan({ nodes: 4 }), limits: limits(), scaleTo: undefined, applied: `${offered}nothing (spec kept)` },
    {
      name: 'leaves memory to OOM plans',
      plan: plan({ nodes: 1, resources: { memoryBytes: 16 * GiB, cpu: 1 } }),
      limits: limits({ autoScaling: true }),
      scaleTo: 1,
      applied: `${offered}scale 3 → 1 nodes`,
    },
  ])('$name', ({ plan, limits, scaleTo, applied }) => {
    const decision = missedInitialPlan(plan, 3, [node(0), node(1, 8 * GiB), node(2, 3 * GiB)], limits, true);
    expect(decision).toEqual({ resources: [], ...(scaleTo !== undefined && { scaleTo }), applied });
  });
});

describe('oomPlan', () => {
  const failed = { id: 1, incarnation: 2 };
  it.each([
    {
      name: "takes the Brain's raise",
      plan: plan({ stage: 'oom', resources: { memoryBytes: 4 * GiB, cpu: 2 } }),
      memory: 2 * GiB,
      expected: { resources: { memoryBytes: 4 * GiB, cpu: 2 }, applied: `node 1 incarnation 2: memory ${2 * GiB} → ${4 * GiB} bytes`, local: false },
    },
    { name: 'records nothing when the Brain would not raise it', plan: plan({ stage: 'oom', resources: { memoryBytes: GiB, cpu: 2 } }), memory: 2 * GiB, expected: { applied: 'nothing (memory at its cap)', local: false } },
    { name: 'records nothing for a plan without resources', plan: plan({ stage: 'oom' }), memory: 2 * GiB, expected: { applied: 'nothing (memory at its cap)', local: false } },
    {
      name: 'doubles memory by its own rule when the Brain does not answer',
      plan: null,
      memory: 2 * GiB,
      expected: { resources: { memoryBytes: 4 * GiB, cpu: 3 }, applied: `node 1 incarnation 2: memory ${2 * GiB} → ${4 * GiB} bytes (decided by the job master)`, local: true },
    },
    {
      name: 'stops at the cap by its own rule',
      plan: null,
      memory: LOCAL_MEMORY_CAP_BYTES - GiB,
      expected: { resources: { memoryBytes: LOCAL_MEMORY_CAP_BYTES, cpu: 3 }, applied: `node 1 incarnation 2: memory ${LOCAL_MEMORY_CAP_BYTES - GiB} → ${LOCAL_MEMORY_CAP_BYTES} bytes (decided by the job master)`, local: true },
    },
  ])('$name', ({ plan, memory, expected }) => {
    const decision = oomPlan(plan, failed, memory, 3);
    expect(decision.warning).toBeUndefined();
    expect(decision.resources).toEqual(expected.resources);
    expect(decision.record?.applied).toBe(expected.applied);
    expect(decision.local?.rule).toBe(expected.local ? LOCAL_OOM_RULE : undefined);
    if (expected.local) expect(decision.record?.plan).toBe(decision.local);
    else expect(decision.record?.plan).toBe(plan);
  });

  it('warns and changes nothing when the Brain does not answer and the node is at the cap', () => {
    expect(oomPlan(null, failed, LOCAL_MEMORY_CAP_BYTES, 3)).toEqual({
      warning: `node 1 ran out of memory at ${LOCAL_MEMORY_CAP_BYTES} bytes, the job master's cap ${LOCAL_MEMORY_CAP_BYTES}, and the Brain did not answer: memory unchanged`,
    });
  });

  // spec.resources.oomFactor and oomMemoryCap: the job master's own rule when the Brain does not answer.
  const fromSpec = (factor: number, capGiB: number): OomFallback => ({ factor, capBytes: capGiB * GiB });
  it.each([
    { name: "raises by the spec's factor", rule: fromSpec(3, 64), memory: 2 * GiB, raised: 6 * GiB, result: `${6 * GiB} bytes (cap ${64 * GiB})` },
    { name: "stops at the spec's cap", rule: fromSpec(3, 5), memory: 2 * GiB, raised: 5 * GiB, result: `${6 * GiB} bytes, capped at ${5 * GiB}` },
    { name: 'a factor of 1 keeps memory: a warning, no plan', rule: fromSpec(1, 64), memory: 2 * GiB, raised: undefined, result: '' },
    { name: "a node above the spec's cap keeps its memory", rule: fromSpec(2, 1), memory: 2 * GiB, raised: undefined, result: '' },
  ])('$name when the Brain does not answer', ({ rule, memory, raised, result }) => {
    const decision = oomPlan(null, failed, memory, 3, rule);
    expect(decision.resources?.memoryBytes).toBe(raised);
    if (raised === undefined) {
      expect(decision.warning).toBe(`node 1 ran out of memory at ${memory} bytes, the job master's cap ${rule.capBytes}, and the Brain did not answer: memory unchanged`);
    } else {
      expect(decision.local?.inputs).toEqual({ memoryBytes: memory, oomFactor: rule.factor, memoryCapBytes: rule.capBytes });
      expect(decision.local?.reason).toBe(`the Brain did not answer: the job master raised node 1's memory itself, ${rule.factor}× ${memory} = ${result}`);
    }
  });
});

describe('runningPlan', () => {
  const refuse = limits().scaleRefusal;
  it.each([
    { name: 'does nothing without an answer', plan: null, last: undefined, expected: {} },
    { name: 'records a keep once per rule', plan: plan({ stage: 'running', rule: 'keep' }), last: 'grow', expected: { applied: 'nothing' } },
    { name: 'does not record the same keep twice', plan: plan({ stage: 'running', rule: 'keep' }), last: 'keep', expected: {} },
    { name: 'does not record a plan with too few samples', plan: plan({ stage: 'running', rule: 'insufficient-data' }), last: undefined, expected: {} },
    { name: 'keeps a count equal to the target', plan: plan({ stage: 'running', rule: 'grow', nodes: 2 }), last: undefined, expected: { applied: 'nothing' } },
    { name: 'scales to a different count', plan: plan({ stage: 'running', rule: 'grow', nodes: 3 }), last: 'grow', expected: { scaleTo: 3, applied: 'scale 2 → 3 nodes' } },
    { name: 'records the refusal of a count the spec forbids', plan: plan({ stage: 'running', rule: 'grow', nodes: 8 }), last: undefined, expected: { applied: 'nothing: cannot scale to 8 nodes' } },
  ])('$name', ({ plan, last, expected }) => {
    expect(runningPlan(plan, 2, last, refuse)).toEqual(expected);
  });
});
