// OOM plan: after a node ran out of memory, give its next incarnation more.
import type { OptimizerSettings, Plan } from './types.ts';

export interface OomInput {
  nodeId: number;
  /** Memory the node had when it died (bytes). */
  memoryBytes: number;
  /** Highest rss the node reported (bytes); null when it never reported. */
  peakRssBytes: number | null;
  cpu: number;
}

export function oomPlan(input: OomInput, s: OptimizerSettings): Plan {
  const base = Math.max(input.memoryBytes, input.peakRssBytes ?? 0);
  const wanted = Math.ceil(base * s.oomFactor);
  const memoryBytes = Math.min(s.memoryCapBytes, wanted);
  const inputs = { memoryBytes: input.memoryBytes, peakRssBytes: input.peakRssBytes, oomFactor: s.oomFactor, memoryCapBytes: s.memoryCapBytes };
  if (memoryBytes <= input.memoryBytes) {
    return {
      stage: 'oom',
      nodeId: input.nodeId,
      resources: { memoryBytes: input.memoryBytes, cpu: input.cpu },
      rule: 'oom-cap-reached',
      reason: `node ${input.nodeId} ran out of memory at ${input.memoryBytes} bytes, already at the cap ${s.memoryCapBytes}: memory unchanged`,
      inputs,
    };
  }
  const capped = memoryBytes < wanted ? ` (capped at ${s.memoryCapBytes})` : '';
  return {
    stage: 'oom',
    nodeId: input.nodeId,
    resources: { memoryBytes, cpu: input.cpu },
    rule: 'oom-factor',
    reason: `node ${input.nodeId} ran out of memory: ${s.oomFactor}× max(limit ${input.memoryBytes}, peak ${input.peakRssBytes ?? 'unknown'}) = ${memoryBytes} bytes${capped}`,
    inputs,
  };
}
