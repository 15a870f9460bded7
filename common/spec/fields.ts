// Field builders shared by the ElasticJob schema: durations, memory, CPU, names, labels.
// Each accepts the human form on input and yields a normalised number on output.
import { z } from 'zod';
import { describeValue } from './errors.ts';
import {
  CPU_FORMS, CPU_PATTERN, DURATION_FORMS, DURATION_PATTERN, MEMORY_FORMS, MEMORY_PATTERN,
  formatDuration, parseCpu, parseDuration, parseMemory, type Parsed,
} from './units.ts';

type Parser = (input: string | number) => Parsed<number>;

function messageFor(parse: Parser, input: unknown): string | undefined {
  const parsed = parse(input as string);
  return parsed.ok ? undefined : parsed.message;
}

/** string | number input checked by `parse`; the JSON Schema still shows the string pattern. */
function unitField(pattern: RegExp, forms: string, parse: Parser) {
  return z
    .union(
      [
        // The pattern puts the accepted forms into the JSON Schema; the parser words the error.
        z.string().regex(pattern, { error: (iss) => messageFor(parse, iss.input) }),
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

/** Duration → whole milliseconds, at least `minMs`. */
export function duration(minMs = 1) {
  return unitField(DURATION_PATTERN, DURATION_FORMS, parseDuration).refine((ms) => ms >= minMs, {
    message: `must be at least ${formatDuration(minMs)}`,
  });
}

const MIN_MEMORY_BYTES = 2 ** 20;
/** Memory → whole bytes. Below 1 MiB is surely a unit mistake (a bare number means bytes). */
export const memory = unitField(MEMORY_PATTERN, MEMORY_FORMS, parseMemory).refine((b) => b >= MIN_MEMORY_BYTES, {
  message: 'must be at least 1Mi; a bare number means bytes, so write e.g. 2Gi or 512Mi',
});

/** CPU → cores, greater than 0. */
export const cpu = unitField(CPU_PATTERN, CPU_FORMS, parseCpu).refine((c) => c > 0, {
  message: 'must be greater than 0',
});

/** Whole number ≥ min. */
export const int = (min: number) => z.int().min(min);

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
/** Job name: it becomes the workflow id `job-<name>`, pod names and the checkpoint folder. */
export const jobName = z
  .string()
  .min(1)
  .max(53)
  .regex(DNS_LABEL, 'must be a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit (e.g. "mnist-ddp")');

const LABEL_NAME = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  if (slash < 0) return LABEL_NAME.test(key);
  return DNS_SUBDOMAIN.test(key.slice(0, slash)) && LABEL_NAME.test(key.slice(slash + 1));
}

/** Kubernetes-compatible labels, so they can be copied onto pods as they are. */
export const labels = z
  .record(
    z.string().refine(isLabelKey, 'label keys are [prefix/]name: name ≤ 63 chars of letters, digits, "-", "_", "." (e.g. team or example.com/team)'),
    z.string().regex(/^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/, 'label values are ≤ 63 chars of letters, digits, "-", "_", "."; quote numbers in YAML ("1")'),
  )
  .prefault({});

/** YAML turns `4` and `true` into numbers and booleans; commands and environments want strings. */
export const text = z
  .union([z.string(), z.number(), z.boolean()], { error: (iss) => `must be a string (got ${describeValue(iss.input)})` })
  .transform(String);
