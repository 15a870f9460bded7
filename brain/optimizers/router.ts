// The optimizer router: the request's stage picks the optimizer; settings come from the
// defaults overridden by the job's merged configuration (`optimizer` key).
import { z } from 'zod';
import { initialPlan } from './initial.ts';
import { oomPlan, type OomInput } from './oom.ts';
import { runningPlan } from './running.ts';
import { DEFAULT_OPTIMIZER_SETTINGS, STAGES, type JobHistory, type JobShape, type OptimizerSettings, type Plan, type Stage, type ThroughputAt } from './types.ts';

const fraction = z.number().min(0).max(1);
const settingsOverride = z
  .object({
    percentile: fraction,
    margin: z.number().min(0).max(10),
    historyJobs: z.number().int().min(1).max(1000),
    oomFactor: z.number().min(1).max(100),
    memoryCapBytes: z.number().int().positive(),
    efficiencyThreshold: fraction,
    minSamples: z.number().int().min(1),
  })
  .partial();

/** Defaults overridden by `configure.optimizer`; a bad value is reported, not silently used. */
export function optimizerSettings(configure: Record<string, unknown>): { settings: OptimizerSettings; warnings: string[] } {
  const parsed = settingsOverride.safeParse(configure.optimizer ?? {});
  if (!parsed.success) {
    return {
      settings: DEFAULT_OPTIMIZER_SETTINGS,
      warnings: parsed.error.issues.map((i) => `configure.optimizer.${i.path.join('.')}: ${i.message} (defaults used)`),
    };
  }
  return { settings: { ...DEFAULT_OPTIMIZER_SETTINGS, ...parsed.data }, warnings: [] };
}

/** Everything any optimizer may need; the service fills what the stage uses. */
export interface OptimizeInputs {
  stage: Stage;
  job: JobShape;
  history?: JobHistory[];
  oom?: OomInput;
  currentNodes?: number;
  throughput?: ThroughputAt[];
}

export class UnknownStageError extends Error {
  constructor(readonly stage: string) {
    super(`unknown stage "${stage}": one of ${STAGES.join(', ')}`);
  }
}

export function isStage(stage: string): stage is Stage {
  return (STAGES as readonly string[]).includes(stage);
}

export function routeOptimize(inputs: OptimizeInputs, settings: OptimizerSettings): Plan {
  switch (inputs.stage) {
    case 'initial':
      return initialPlan(inputs.job, (inputs.history ?? []).slice(0, settings.historyJobs), settings);
    case 'oom': {
      const oom = inputs.oom ?? { nodeId: 0, memoryBytes: inputs.job.memoryBytes, peakRssBytes: null, cpu: inputs.job.cpu };
      return oomPlan(oom, settings);
    }
    case 'running':
      return runningPlan(inputs.job, inputs.currentNodes ?? inputs.job.initialNodes, inputs.throughput ?? [], settings);
    default:
      throw new UnknownStageError(String(inputs.stage));
  }
}
