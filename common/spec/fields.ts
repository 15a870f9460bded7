// Field builders shared by the ElasticJob schema: bounded strings, numbers, lists and maps,
// paths, durations, memory, CPU, names, labels. Each accepts the human form on input and yields
// a normalised value on output. Every builder has an upper bound, so no spec can ask for a
// million nodes, a year-long timeout or a megabyte-long argument by accident.
import { z } from 'zod';
import { describeValue } from './errors.ts';
import {
  CPU_FORMS, CPU_PATTERN, DURATION_FORMS, DURATION_PATTERN, MEMORY_FORMS, MEMORY_PATTERN,
  formatDuration, parseCpu, parseDuration, parseMemory, type Parsed,
} from './units.ts';

/** The upper bounds, in one place; docs/spec-reference.md lists them. */
export const LIMITS = {
  /** spec.nodes.min, max, initial, unit. */
  nodes: 100_000,
  /** spec.nprocPerNode. */
  nprocPerNode: 1024,
  /** Every duration: 30 days. */
  durationMs: 30 * 24 * 3_600_000,
  /** Any string value (4 KiB). */
  text: 4096,
  /** Items of a list, entries of a map. */
  items: 1000,
} as const;

/**
 * A string of at most `max` characters. The length is checked first and stops the other
 * checks, so no pattern ever runs over a huge value.
 */
export const str = (max: number = LIMITS.text) => z.string().max(max, { abort: true });

/**
 * A section the spec cannot do without: missing or empty (`spec:` with nothing under it is null
 * in YAML), it is one error on its own path that says what goes in it.
 */
export function requiredSection<T extends z.core.$ZodLooseShape>(shape: T, needs: string) {
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code !== 'invalid_type') return undefined;
      if (iss.input === undefined) return `is required: ${needs}`;
      if (iss.input === null) return `is empty: ${needs}`;
      return undefined;
    },
  });
}

/** Whole number in [min, max]; out of range, the object's cross-field checks are skipped (they would only repeat it). */
export const int = (min: number, max: number) => z.int().min(min, { abort: true }).max(max, { abort: true });

/** A list of at most LIMITS.items items. */
export const list = <T extends z.ZodType>(item: T) => z.array(item).max(LIMITS.items);

/** A map of at most LIMITS.items entries. */
export function map<K extends z.core.$ZodRecordKey, V extends z.ZodType>(key: K, value: V) {
  return z.record(key, value).refine((m) => Object.keys(m).length <= LIMITS.items, {
    message: `must have at most ${LIMITS.items} entries`,
  });
}

/**
 * A filesystem path: absolute, or relative without ".." (for the local backend relative paths
 * resolve against the spec file's folder, so `../../etc` would reach outside the project).
 */
export const filePath = str()
  .min(1)
  .superRefine((p, ctx) => {
    if (p.includes('\0')) ctx.addIssue({ code: 'custom', message: 'must not contain a NUL character', input: p });
    else if (p.split(/[/\\]/).includes('..')) {
      ctx.addIssue({
        code: 'custom',
        input: p,
        message: `must not contain ".." (got ${describeValue(p)}): write an absolute path, or a relative one that stays inside its folder (local backend: the spec file's folder)`,
      });
    }
  });

type Parser = (input: string | number) => Parsed<number>;

/** The parser's words for a value the pattern refused (the parser also forgives spaces; the pattern does not). */
function messageFor(parse: Parser, forms: string, input: unknown): string {
  const parsed = parse(input as string);
  return parsed.ok ? `must be ${forms} without spaces around it (got ${describeValue(input)})` : parsed.message;
}

/** string | number input checked by `parse`; the JSON Schema still shows the string pattern. */
function unitField(pattern: RegExp, forms: string, parse: Parser) {
  return z
    .union(
      [
        // The pattern puts the accepted forms into the JSON Schema; the parser words the error.
        str(64).regex(pattern, { error: (iss) => messageFor(parse, forms, iss.input) }),
        z.number(),
      ],
      { error: (iss) => `must be ${forms} (got ${describeValue(iss.input)})` },
    )
    .transform((value, ctx) => {
      const parsed = parse(value);
      if (parsed.ok) return parsed.value;
      ctx.addIssue({ code: 'custom', message: parsed.message, input: value });
      return z.NEVER;
    });
}

/**
 * Duration string ('30s', '1h30m') → whole milliseconds in [minMs, LIMITS.durationMs].
 * A bare number is an error that shows the unit syntax (it used to mean milliseconds).
 */
export function duration(minMs = 1) {
  return z
    .string({
      error: (iss) =>
        typeof iss.input === 'number' ? messageFor(parseDuration, DURATION_FORMS, iss.input) : `must be a duration like ${DURATION_FORMS} (got ${describeValue(iss.input)})`,
    })
    .max(64, { abort: true, error: (iss) => messageFor(parseDuration, DURATION_FORMS, iss.input) })
    .regex(DURATION_PATTERN, { error: (iss) => messageFor(parseDuration, DURATION_FORMS, iss.input) })
    .transform((value, ctx) => {
      const parsed = parseDuration(value);
      if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.message, input: value });
      else if (parsed.value < minMs) ctx.addIssue({ code: 'custom', message: `must be at least ${formatDuration(minMs)} (got ${value})`, input: value });
      else if (parsed.value > LIMITS.durationMs) {
        ctx.addIssue({ code: 'custom', message: `must be at most ${formatDuration(LIMITS.durationMs)} (30 days) (got ${value})`, input: value });
      } else return parsed.value;
      return z.NEVER;
    });
}

const MIN_MEMORY_BYTES = 2 ** 20;
const MAX_MEMORY_BYTES = 2 ** 46;
/** Memory → whole bytes in [1Mi, 64Ti]. Below 1 MiB is surely a unit mistake (a bare number means bytes). */
export const memory = unitField(MEMORY_PATTERN, MEMORY_FORMS, parseMemory)
  .refine((b) => b >= MIN_MEMORY_BYTES, { message: 'must be at least 1Mi; a bare number means bytes, so write e.g. 2Gi or 512Mi' })
  .refine((b) => b <= MAX_MEMORY_BYTES, { message: 'must be at most 64Ti per node' });

const MAX_CPU = 4096;
/** CPU → cores in (0, 4096]. */
export const cpu = unitField(CPU_PATTERN, CPU_FORMS, parseCpu)
  .refine((c) => c > 0, { message: 'must be greater than 0' })
  .refine((c) => c <= MAX_CPU, { message: `must be at most ${MAX_CPU} cores per node` });

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
/** Job name: it becomes the workflow id `job-<name>`, pod names and the checkpoint folder. */
export const jobName = z
  .string()
  .min(1)
  .max(53, { abort: true })
  .regex(DNS_LABEL, 'must be a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit (e.g. "mnist-ddp")');

const LABEL_NAME = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  if (slash < 0) return LABEL_NAME.test(key);
  return DNS_SUBDOMAIN.test(key.slice(0, slash)) && LABEL_NAME.test(key.slice(slash + 1));
}

/** Kubernetes-compatible labels, so they can be copied onto pods as they are. */
export const labels = map(
  str(317).refine(isLabelKey, 'label keys are [prefix/]name: name ≤ 63 chars of letters, digits, "-", "_", "." (e.g. team or example.com/team)'),
  str(63).regex(/^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/, 'label values are ≤ 63 chars of letters, digits, "-", "_", "."; quote numbers in YAML ("1")'),
).prefault({});

/** YAML turns `4` and `true` into numbers and booleans; commands and environments want strings. */
export const text = z
  .union([str(), z.number(), z.boolean()], {
    error: (iss) =>
      typeof iss.input === 'string' ? `must be at most ${LIMITS.text} characters long (got ${iss.input.length})` : `must be a string (got ${describeValue(iss.input)})`,
  })
  .transform(String);
