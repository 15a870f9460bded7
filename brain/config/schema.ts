// Brain configurations as users write them (YAML files, table rows, ConfigMap keys):
// Include / Exclude selectors over job characteristics, and the values to Configure.
import { z } from 'zod';

/** One value, or a list of which any may match. */
const oneOrMany = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

export const selectorSchema = z.strictObject({
  user: oneOrMany.optional(),
  group: oneOrMany.optional(),
  cluster: oneOrMany.optional(),
  name: oneOrMany.optional(),
  /** Every listed label must be present with (one of) the given value(s). */
  labels: z.record(z.string().min(1), oneOrMany).optional(),
});
export type Selector = z.infer<typeof selectorSchema>;

export const brainConfigSchema = z.strictObject({
  name: z.string().min(1).max(255),
  /** Higher wins when several configurations set the same key. */
  priority: z.number().int().default(0),
  include: selectorSchema.default({}),
  exclude: selectorSchema.default({}),
  configure: z.record(z.string(), z.unknown()),
});
export type BrainConfigInput = z.output<typeof brainConfigSchema>;

/** What configurations match against: a job's characteristics. */
export const jobCharacteristicsSchema = z.strictObject({
  name: z.string().min(1),
  user: z.string().default(''),
  group: z.string().default(''),
  cluster: z.string().default(''),
  labels: z.record(z.string(), z.string()).default({}),
});
export type JobCharacteristics = z.output<typeof jobCharacteristicsSchema>;

export class BrainConfigError extends Error {}

/**
 * Validates a document holding one configuration, a list of them, or `{configs: [...]}`.
 * Throws a BrainConfigError naming `where` and every bad field; names must be unique.
 */
export function parseBrainConfigs(doc: unknown, where: string): BrainConfigInput[] {
  const list = Array.isArray(doc)
    ? doc
    : doc && typeof doc === 'object' && 'configs' in doc && Array.isArray((doc as { configs: unknown }).configs)
      ? (doc as { configs: unknown[] }).configs
      : [doc];
  const problems: string[] = [];
  const configs: BrainConfigInput[] = [];
  list.forEach((item, i) => {
    const parsed = brainConfigSchema.safeParse(item);
    const prefix = list.length === 1 && !Array.isArray(doc) ? '' : `[${i}]`;
    if (parsed.success) configs.push(parsed.data);
    else for (const issue of parsed.error.issues) problems.push(`${where}${prefix}.${issue.path.join('.') || '(root)'}: ${issue.message}`);
  });
  if (problems.length > 0) throw new BrainConfigError(problems.join('; '));
  return configs;
}

/** Rejects two configurations with one name across a source. */
export function checkUniqueNames(configs: BrainConfigInput[], where: string): void {
  const seen = new Set<string>();
  for (const c of configs) {
    if (seen.has(c.name)) throw new BrainConfigError(`${where}: configuration name "${c.name}" is used twice`);
    seen.add(c.name);
  }
}
