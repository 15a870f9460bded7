// Brain configurations as users write them (YAML files, table rows, ConfigMap keys):
// Include / Exclude selectors over job characteristics, and the values to Configure.
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { issueLines, shown } from './issues.ts';

/** One value, or a list of which any may match. */
const nonEmpty = z.string().min(1, { error: 'must not be empty' });
const oneOrMany = z.union([nonEmpty, z.array(nonEmpty).min(1, { error: 'must not be an empty list' })], {
  error: 'must be a non-empty string or a non-empty list of them',
});

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
 * A number setting in a range, every violation (type, integer, either bound) said the same way:
 * `must be a number in (0, 1]`; the value given is added where the error is reported.
 */
function numberIn(min: number, max: number, o: { minExclusive?: boolean; int?: boolean } = {}) {
  const unbounded = max === Number.MAX_SAFE_INTEGER;
  const error =
    unbounded && o.int && min === 1
      ? 'must be a positive integer'
      : `must be ${o.int ? 'an integer' : 'a number'} ${unbounded ? `≥ ${min}` : `in ${o.minExclusive ? '(' : '['}${min}, ${max}]`}`;
  const n = o.int ? z.number({ error }).int({ error }) : z.number({ error });
  return (o.minExclusive ? n.gt(min, { error }) : n.min(min, { error })).max(max, { error });
}

/**
 * The optimizers' tunables as a configuration may set them (`configure.optimizer`), with their
 * ranges; brain/optimizers/types.ts documents each and its default.
 */
export const optimizerSettingsSchema = z
  .strictObject({
    /** initial: percentile of similar jobs' peak usage; 0 would plan from nothing. */
    percentile: numberIn(0, 1, { minExclusive: true }),
    /** initial: fraction added on top; more than 10× the percentile is a typo. */
    margin: numberIn(0, 10),
    /** initial: similar ended jobs looked at. */
    historyJobs: numberIn(1, 1000, { int: true }),
    /** oom: memory × factor; below 1 would shrink the node that ran out of memory. */
    oomFactor: numberIn(1, 100),
    /** oom and initial: the most memory a plan gives a node. */
    memoryCapBytes: numberIn(1, Number.MAX_SAFE_INTEGER, { int: true }),
    /** running: per-node throughput ratio a larger size must keep; above 1 no size would do. */
    efficiencyThreshold: numberIn(0, 1, { minExclusive: true }),
    /** running: throughput samples before a node count counts as measured. */
    minSamples: numberIn(1, 100_000, { int: true }),
  })
  .partial();

const NAME = 'must be a name of 1 to 255 characters';

export const brainConfigSchema = z.strictObject({
  name: z.string({ error: NAME }).min(1, { error: NAME }).max(255, { error: NAME }),
  /** Higher wins when several configurations set the same key. */
  priority: z.number({ error: 'must be an integer' }).int({ error: 'must be an integer' }).default(0),
  include: selectorSchema.default({}),
  exclude: selectorSchema.default({}),
  /** Free-form values, except `optimizer`, which must be valid optimizer settings. */
  configure: z.looseObject({ optimizer: optimizerSettingsSchema.optional() }, { error: 'must be a map of the values to configure' }),
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
  /** `<where>: <field>: <problem>`, one per problem of a rejected entry; empty when every entry is valid. */
  errors: string[];
}

/** The fields of the object at `path` in a configuration, for "unknown field" messages. */
function knownFields(path: readonly PropertyKey[]): readonly string[] | undefined {
  const at = path.map(String).join('.');
  if (at === '') return Object.keys(brainConfigSchema.shape);
  if (at === 'include' || at === 'exclude') return Object.keys(selectorSchema.shape);
  if (at === 'configure.optimizer') return Object.keys(optimizerSettingsSchema.shape);
  return undefined;
}

/** Checks one entry; its problems as `<where>: <field>: <reason> (got <value>)`, one per line. */
export function parseBrainConfig(entry: unknown, where: string): { config: BrainConfigInput; errors: [] } | { config?: undefined; errors: string[] } {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    return { errors: [`${where}: must be a configuration (a map with name, include, exclude, configure) (got ${shown(entry)})`] };
  }
  const parsed = brainConfigSchema.safeParse(entry, { reportInput: true });
  if (parsed.success) return { config: parsed.data, errors: [] };
  const name = (entry as { name?: unknown }).name;
  const named = typeof name === 'string' && name && where.endsWith(']') ? ` (configuration "${name}")` : '';
  return { errors: issueLines(parsed.error.issues, knownFields).map((line) => `${where}${named}: ${line}`) };
}

/**
 * Validates a document holding one configuration, a list of them, or `{configs: [...]}`, entry
 * by entry: a bad entry is rejected alone, each problem naming `where`, the entry's index and
 * the field (`team.yaml[1]: include.usr: unknown field`); the valid ones are returned.
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
    const parsed = parseBrainConfig(item, at);
    if (parsed.config) read.configs.push({ config: parsed.config, where: at });
    else read.errors.push(...parsed.errors);
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

/**
 * Joins reads in order, each read's problems in its place (so problems come in file/key order);
 * of two configurations with one name the first is kept and the second rejected, naming both places.
 */
export function mergeReads(reads: SourceRead[]): SourceRead {
  const out: SourceRead = { configs: [], errors: [] };
  const seen = new Map<string, string>();
  for (const read of reads) {
    out.errors.push(...read.errors);
    for (const c of read.configs) {
      const first = seen.get(c.config.name);
      if (first !== undefined) out.errors.push(`${c.where}: configuration name "${c.config.name}" is already used in ${first}; names must be unique within a source (this one is ignored)`);
      else {
        seen.set(c.config.name, c.where);
        out.configs.push(c);
      }
    }
  }
  return out;
}
