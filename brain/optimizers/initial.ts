// Initial plan: resources and node count for a new job from similar past jobs.
import type { JobHistory, JobShape, OptimizerSettings, Plan } from './types.ts';

/** Nearest-rank percentile of a non-empty list. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[rank]!;
}

function clampNodes(n: number, job: JobShape): number {
  const within = Math.min(job.maxNodes, Math.max(job.minNodes, n));
  const cut = within - (within % job.unit);
  return cut >= job.minNodes ? cut : job.minNodes;
}

export function initialPlan(job: JobShape, history: JobHistory[], s: OptimizerSettings): Plan {
  const mem = history.map((h) => h.peakRssBytes).filter((v): v is number => v !== null && v > 0);
  const cpu = history.map((h) => h.peakCpu).filter((v): v is number => v !== null && v > 0);
  if (mem.length === 0) {
    return {
      stage: 'initial',
      nodes: job.initialNodes,
      resources: { memoryBytes: job.memoryBytes, cpu: job.cpu },
      rule: 'no-history',
      reason: 'no similar past job with usage data: the spec\'s resources and node count',
      inputs: { similarJobs: history.length, oomFailures: history.reduce((n, h) => n + h.oomFailures, 0) },
    };
  }
  const memP = percentile(mem, s.percentile);
  const memoryBytes = Math.min(s.memoryCapBytes, Math.ceil(memP * (1 + s.margin)));
  const cpuCores = cpu.length > 0 ? Math.max(0.1, Math.round(percentile(cpu, s.percentile) * (1 + s.margin) * 10) / 10) : job.cpu;
  const nodes = clampNodes(Math.round(percentile(history.map((h) => h.nodes), 0.5)), job);
  const pct = Math.round(s.percentile * 100);
  const oomFailures = history.reduce((n, h) => n + h.oomFailures, 0);
  const ooms = oomFailures > 0 ? ` (${oomFailures} out-of-memory failure(s) among them)` : '';
  return {
    stage: 'initial',
    nodes,
    resources: { memoryBytes, cpu: cpuCores },
    rule: 'history-percentile',
    reason: `p${pct} peak of ${mem.length} similar job(s)${ooms} + ${Math.round(s.margin * 100)}% margin: memory ${memoryBytes} bytes, cpu ${cpuCores}; median node count ${nodes}`,
    inputs: { similarJobs: history.length, oomFailures, peakRssP: memP, cpuSamples: cpu.length, percentile: s.percentile, margin: s.margin },
  };
}
