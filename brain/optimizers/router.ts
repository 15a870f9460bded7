// The optimizer router: the request's stage picks the optimizer; settings come from the
// defaults overridden by the job's merged configuration (`optimizer` key).
import { issueLines } from '../config/issues.ts';
import { optimizerSettingsSchema } from '../config/schema.ts';
import { initialPlan } from './initial.ts';
import { oomPlan, type OomInput } from './oom.ts';
import { runningPlan } from './running.ts';
import { DEFAULT_OPTIMIZER_SETTINGS, STAGES, type JobHistory, type JobShape, type OptimizerSettings, type Plan, type Stage, type ThroughputAt } from './types.ts';

/**
 * Defaults overridden by `configure.optimizer`. Sources validate each configuration against the
 * same schema, so a bad value never reaches a snapshot; one that did (a snapshot from an older
 * Rover) is reported per field and that field's default used, the valid fields kept.
 */
export function optimizerSettings(configure: Record<string, unknown>): { settings: OptimizerSettings; warnings: string[] } {
  const override = (configure.optimizer ?? {}) as Record<string, unknown>;
  const settings: Record<string, unknown> = { ...DEFAULT_OPTIMIZER_SETTINGS };
  const warnings: string[] = [];
  for (const [key, value] of Object.entries(override)) {
    const parsed = optimizerSettingsSchema.safeParse({ [key]: value }, { reportInput: true });
    if (parsed.success) settings[key] = value;
    else warnings.push(...issueLines(parsed.error.issues, () => Object.keys(optimizerSettingsSchema.shape)).map((line) => `configure.optimizer.${line}; default used`));
  }
  return { settings: settings as unknown as OptimizerSettings, warnings };
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
