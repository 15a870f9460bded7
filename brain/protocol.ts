// The Brain HTTP API's wire contract (zod), shared by the routes, the job activities and the CLI.
import { z } from 'zod';
import { jobCharacteristicsSchema } from './config/schema.ts';
import type { MergedConfig } from './config/match.ts';
import type { Plan } from './optimizers/types.ts';

/** POST /brain/v1/optimize */
export const optimizeRequest = z.strictObject({
  /** The job's name (its id in the store). */
  job: z.string().min(1),
  /** initial | oom | running; anything else is a 400 listing the stages. */
  stage: z.string().min(1),
  /** oom: the node that ran out of memory, its incarnation, exit code and reason. */
  nodeId: z.number().int().min(0).optional(),
  incarnation: z.number().int().min(0).optional(),
  exitCode: z.number().int().nullable().optional(),
  reason: z.string().max(4000).optional(),
  /** oom: the memory the node had (bytes); default the node's recorded resources, else the spec's. */
  memoryBytes: z.number().int().positive().optional(),
  /** running: nodes the job runs with now; default the spec's initial count. */
  currentNodes: z.number().int().min(1).optional(),
});
export type OptimizeRequest = z.infer<typeof optimizeRequest>;

export interface OptimizeResponse {
  job: string;
  plan: Plan;
  /** Configurations that shaped the optimizer settings (source/name). */
  configs: string[];
  warnings: string[];
}

/** POST /brain/v1/config: match a job by its characteristics (it need not exist yet). */
export const configRequest = jobCharacteristicsSchema;
export type ConfigRequest = z.input<typeof configRequest>;

/** GET /brain/v1/config?job=NAME (a submitted job) or ?name=&user=&group=&cluster=&label=k=v */
export const configQuery = z.strictObject({
  job: z.string().min(1).optional(),
  name: z.string().min(1).optional(),
  user: z.string().optional(),
  group: z.string().optional(),
  cluster: z.string().optional(),
  label: z.union([z.string(), z.array(z.string())]).optional(),
});

export interface ConfigResponse extends MergedConfig {
  job: z.output<typeof jobCharacteristicsSchema>;
}

/** One configuration as served by GET /brain/v1/configs. */
export interface ServedConfig {
  source: string;
  version: number;
  name: string;
  priority: number;
  include: unknown;
  exclude: unknown;
  configure: unknown;
}
