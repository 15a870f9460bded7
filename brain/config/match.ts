// Include / Exclude matching and the merge order of matching configurations.
//
// Precedence (documented in brain/README.md):
//  1. A configuration applies to a job when every key of its Include matches (a list matches if
//     any element equals the job's value; `labels` needs every listed label) and no key of its
//     Exclude matches (any one matching Exclude key rules it out: Exclude wins over Include).
//     An empty Include matches every job.
//  2. Applicable configurations merge in ascending (priority, specificity, source, name) order,
//     later ones overriding earlier ones: higher priority wins; at equal priority the more
//     specific Include (more keys, each label counted) wins; then source and name break ties.
//  3. Objects merge key by key (recursively); arrays and scalars replace.
import type { BrainConfigInput, JobCharacteristics, Selector } from './schema.ts';

export interface SourcedConfig extends BrainConfigInput {
  /** The source the configuration came from. */
  source: string;
}

export interface MergedConfig {
  /** The merged Configure values. */
  configure: Record<string, unknown>;
  /** Names of the applied configurations (source/name), in merge order: last wins. */
  applied: string[];
  /** For every top-level key, the configuration whose value won. */
  origin: Record<string, string>;
}

function listOf(value: string | string[]): string[] {
  return Array.isArray(value) ? value : [value];
}

const SCALAR_KEYS = ['user', 'group', 'cluster', 'name'] as const;

/** Keys of the selector that match the job (a key with a list matches if any element does). */
function matchingKeys(selector: Selector, job: JobCharacteristics): { total: number; matched: number } {
  let total = 0;
  let matched = 0;
  for (const key of SCALAR_KEYS) {
    const wanted = selector[key];
    if (wanted === undefined) continue;
    total += 1;
    if (listOf(wanted).includes(job[key])) matched += 1;
  }
  for (const [label, wanted] of Object.entries(selector.labels ?? {})) {
    total += 1;
    const value = job.labels[label];
    if (value !== undefined && listOf(wanted).includes(value)) matched += 1;
  }
  return { total, matched };
}

/** True when the configuration applies to the job (Include all match, no Exclude key matches). */
export function configApplies(config: Pick<BrainConfigInput, 'include' | 'exclude'>, job: JobCharacteristics): boolean {
  const inc = matchingKeys(config.include, job);
  if (inc.matched < inc.total) return false;
  return matchingKeys(config.exclude, job).matched === 0;
}

/** How specific the Include is: the number of keys, each label counted. */
export function specificity(config: Pick<BrainConfigInput, 'include'>): number {
  const { labels, ...rest } = config.include;
  return Object.values(rest).filter((v) => v !== undefined).length + Object.keys(labels ?? {}).length;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: objects key by key, everything else replaced by `over`. */
export function mergeValues(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? mergeValues(out[k], v) : v;
  return out;
}

function compare(a: SourcedConfig, b: SourcedConfig): number {
  return (
    a.priority - b.priority ||
    specificity(a) - specificity(b) ||
    a.source.localeCompare(b.source) ||
    a.name.localeCompare(b.name)
  );
}

/** Every applicable configuration merged in precedence order. */
export function matchConfigs(configs: SourcedConfig[], job: JobCharacteristics): MergedConfig {
  const applicable = configs.filter((c) => configApplies(c, job)).sort(compare);
  let configure: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  for (const c of applicable) {
    configure = mergeValues(configure, c.configure) as Record<string, unknown>;
    for (const key of Object.keys(c.configure)) origin[key] = `${c.source}/${c.name}`;
  }
  return { configure, applied: applicable.map((c) => `${c.source}/${c.name}`), origin };
}
