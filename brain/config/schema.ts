// Brain configurations as users write them (YAML files, table rows, ConfigMap keys):
// Include / Exclude selectors over job characteristics, and the values to Configure.
import { parseDocument } from 'yaml';
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

/**
 * The optimizers' tunables as a configuration may set them (`configure.optimizer`), with their
 * ranges; brain/optimizers/types.ts documents each and its default.
 */
export const optimizerSettingsSchema = z
  .strictObject({
    percentile: z.number().gt(0).max(1),
    margin: z.number().min(0).max(10),
    historyJobs: z.number().int().min(1).max(1000),
    oomFactor: z.number().min(1).max(100),
    memoryCapBytes: z.number().int().positive(),
    efficiencyThreshold: z.number().gt(0).max(1),
    minSamples: z.number().int().min(1).max(100_000),
  })
  .partial();

export const brainConfigSchema = z.strictObject({
  name: z.string().min(1).max(255),
  /** Higher wins when several configurations set the same key. */
  priority: z.number().int().default(0),
  include: selectorSchema.default({}),
  exclude: selectorSchema.default({}),
  /** Free-form values, except `optimizer`, which must be valid optimizer settings. */
  configure: z.looseObject({ optimizer: optimizerSettingsSchema.optional() }),
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

/** A configuration and the place it was read from (file, file[i], row "x", configmap key). */
export interface LocatedConfig {
  config: BrainConfigInput;
  where: string;
}

/** What reading a source yields: every valid entry, and one message per rejected entry. */
export interface SourceRead {
  configs: LocatedConfig[];
  /** `<where>.<field>: <problem>`, one per rejected entry; empty when every entry is valid. */
  errors: string[];
}

/**
 * Validates a document holding one configuration, a list of them, or `{configs: [...]}`, entry
 * by entry: a bad entry is rejected alone, its message naming `where`, its index and every bad
 * field (`team.yaml[1].include.usr: …`); the valid ones are returned.
 */
export function parseBrainConfigs(doc: unknown, where: string): SourceRead {
  const list = Array.isArray(doc)
    ? doc
    : doc && typeof doc === 'object' && 'configs' in doc && Array.isArray((doc as { configs: unknown }).configs)
      ? (doc as { configs: unknown[] }).configs
      : [doc];
  const read: SourceRead = { configs: [], errors: [] };
  list.forEach((item, i) => {
    const at = list.length === 1 && !Array.isArray(doc) ? where : `${where}[${i}]`;
    const parsed = brainConfigSchema.safeParse(item);
    if (parsed.success) read.configs.push({ config: parsed.data, where: at });
    else read.errors.push(parsed.error.issues.map((issue) => `${at}.${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; '));
  });
  return read;
}

/**
 * Parses one YAML text (a file, a ConfigMap key) into configurations; invalid YAML rejects the
 * text alone, with its line and column. An empty text holds none.
 */
export function parseBrainConfigYaml(text: string, where: string): SourceRead {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0] ? `:${e.linePos[0].line}:${e.linePos[0].col}` : '';
    return { configs: [], errors: [`${where}${line}: invalid YAML: ${e.message.split('\n')[0]}`] };
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return { configs: [], errors: [] };
  return parseBrainConfigs(value, where);
}

/** Joins reads in order; of two configurations with one name the first is kept and the second rejected, naming both places. */
export function mergeReads(reads: SourceRead[]): SourceRead {
  const out: SourceRead = { configs: [], errors: reads.flatMap((r) => r.errors) };
  const seen = new Map<string, string>();
  for (const c of reads.flatMap((r) => r.configs)) {
    const first = seen.get(c.config.name);
    if (first !== undefined) out.errors.push(`${c.where}: configuration name "${c.config.name}" is already used in ${first}; names must be unique within a source (this one is ignored)`);
    else {
      seen.set(c.config.name, c.where);
      out.configs.push(c);
    }
  }
  return out;
}
