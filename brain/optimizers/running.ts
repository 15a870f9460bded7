// Running plan (auto-scaling): pick a node count from throughput measured at the sizes the job
// has run with, keeping per-node efficiency at or above the threshold.
import type { JobShape, OptimizerSettings, Plan, ThroughputAt } from './types.ts';

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

export function runningPlan(job: JobShape, currentNodes: number, measured: ThroughputAt[], s: OptimizerSettings): Plan {
  const sizes = measured.filter((m) => m.samples.length >= s.minSamples && m.nodes > 0).sort((a, b) => a.nodes - b.nodes);
  const current = sizes.find((m) => m.nodes === currentNodes);
  if (!current) {
    return {
      stage: 'running',
      rule: 'insufficient-data',
      reason: `fewer than ${s.minSamples} throughput samples at the current ${currentNodes} node(s): no recommendation`,
      inputs: { currentNodes, measuredSizes: measured.map((m) => ({ nodes: m.nodes, samples: m.samples.length })) },
    };
  }
  const base = sizes[0]!;
  const basePerNode = mean(base.samples) / base.nodes;
  const efficiency = Object.fromEntries(sizes.map((m) => [m.nodes, basePerNode > 0 ? mean(m.samples) / m.nodes / basePerNode : 0]));
  const inputs = { currentNodes, threshold: s.efficiencyThreshold, efficiency, throughput: Object.fromEntries(sizes.map((m) => [m.nodes, mean(m.samples)])) };
  const eff = (n: number) => efficiency[n] ?? 0;
  if (eff(currentNodes) < s.efficiencyThreshold) {
    const good = sizes.filter((m) => eff(m.nodes) >= s.efficiencyThreshold && m.nodes < currentNodes && m.nodes >= job.minNodes);
    const target = good.at(-1)?.nodes ?? job.minNodes;
    return {
      stage: 'running',
      nodes: target,
      rule: 'efficiency-below-threshold',
      reason: `per-node efficiency ${eff(currentNodes).toFixed(2)} at ${currentNodes} nodes is below ${s.efficiencyThreshold}: scale to ${target}`,
      inputs,
    };
  }
  const next = Math.min(job.maxNodes, currentNodes + job.unit);
  const failedAbove = sizes.some((m) => m.nodes > currentNodes && eff(m.nodes) < s.efficiencyThreshold);
  if (next > currentNodes && !failedAbove) {
    return {
      stage: 'running',
      nodes: next,
      rule: 'scale-up-efficient',
      reason: `per-node efficiency ${eff(currentNodes).toFixed(2)} at ${currentNodes} nodes meets ${s.efficiencyThreshold}: try ${next}`,
      inputs,
    };
  }
  return {
    stage: 'running',
    nodes: currentNodes,
    rule: next > currentNodes ? 'larger-size-inefficient' : 'at-max',
    reason: next > currentNodes ? `a larger size measured below efficiency ${s.efficiencyThreshold}: stay at ${currentNodes}` : `already at spec.nodes.max ${job.maxNodes}: stay`,
    inputs,
  };
}
