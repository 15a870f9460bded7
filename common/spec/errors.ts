// Turns zod issues into SpecErrors: one per problem, with a dotted field path and a message
// that says what is wrong and how to fix it.
import { z } from 'zod';
import { unknownKeyMessage } from './suggest.ts';

/**
 * One problem in a job spec. `path` is dotted, array items in brackets and keys that are not
 * plain identifiers quoted: `spec.nodes.min`, `spec.entrypoint.args[0]`,
 * `metadata.labels["example.com/team"]`. Empty for problems with the whole file.
 * `line`/`column` (1-based) are set when the spec came from a file.
 */
export interface SpecError {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

/** A problem before its path is rendered: loaders map `segments` to file positions. */
export interface SpecIssue {
  segments: PropertyKey[];
  message: string;
}

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

export function formatPath(segments: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && PLAIN_KEY.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** A short rendering of a bad value for "(got …)". */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return String(value);
}

const TYPE_NAMES: Record<string, string> = {
  number: 'a number', int: 'a whole number', string: 'a string', boolean: 'true or false',
  object: 'a mapping of fields', array: 'a list', record: 'a mapping',
};

/** Default wording for zod's issue codes; messages set on a schema take precedence. */
export const specErrorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
    {
      if (iss.input === undefined) return 'is required';
      // `nodes:` with nothing under it is null in YAML: say so rather than "got null".
      if (iss.input === null && (iss.expected === 'object' || iss.expected === 'record')) return 'is empty: give it fields or remove the line';
      if (iss.input === null && iss.expected === 'array') return 'is empty: give it items (e.g. [a, b]) or remove the line';
      // z.int() reports expected "number"; say "whole number" like its other messages.
      const expected = iss.inst instanceof z.ZodNumberFormat ? 'int' : iss.expected;
      return `must be ${TYPE_NAMES[expected] ?? expected} (got ${describeValue(iss.input)})`;
    }
    case 'too_small':
    case 'too_big': {
      const small = iss.code === 'too_small';
      const bound = Number(small ? iss.minimum : iss.maximum);
      if (iss.origin === 'string') {
        if (small && bound === 1) return 'must not be empty';
        return `must be at ${small ? 'least' : 'most'} ${bound} characters long`;
      }
      if (iss.origin === 'array') return `must have at ${small ? 'least' : 'most'} ${bound} items`;
      const op = small ? (iss.inclusive ? '≥' : '>') : iss.inclusive ? '≤' : '<';
      return `must be ${op} ${bound} (got ${describeValue(iss.input)})`;
    }
    case 'invalid_value': {
      const options = iss.values.map((v) => JSON.stringify(v));
      const expected = options.length === 1 ? options[0] : `one of ${options.join(', ')}`;
      if (iss.input === undefined) return `is required: ${expected}`;
      return `must be ${expected} (got ${describeValue(iss.input)})`;
    }
    default:
      return undefined;
  }
};

/** Converts zod issues; `schema` lists the allowed keys (and a likely meaning) when a key is unknown. */
export function toSpecIssues(issues: readonly z.core.$ZodIssue[], schema: z.ZodType): SpecIssue[] {
  const out: SpecIssue[] = [];
  for (const issue of issues) {
    if (isSafeIntegerBound(issue) && issues.some((other) => other !== issue && other.code === issue.code && samePath(other.path, issue.path))) {
      continue;
    }
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        out.push({ segments: [...issue.path, key], message: unknownKeyMessage(schema, issue.path, formatPath(issue.path), key) });
      }
    } else if (issue.code === 'invalid_key') {
      out.push({ segments: issue.path, message: issue.issues[0]?.message ?? issue.message });
    } else {
      out.push({ segments: issue.path, message: issue.message });
    }
  }
  return out;
}

/** z.int()'s own ±2^53 bound; a field with a tighter bound reports that one alone. */
function isSafeIntegerBound(issue: z.core.$ZodIssue): boolean {
  if (issue.code === 'too_big') return Number(issue.maximum) === Number.MAX_SAFE_INTEGER;
  if (issue.code === 'too_small') return Number(issue.minimum) === Number.MIN_SAFE_INTEGER;
  return false;
}

function samePath(a: readonly PropertyKey[], b: readonly PropertyKey[]): boolean {
  return a.length === b.length && a.every((seg, i) => seg === b[i]);
}

/** Lines like `job.yaml: warning: spec.entrypoint: …`; warnings do not stop anything. */
export function formatSpecWarnings(warnings: readonly SpecError[], source?: string): string {
  return warnings.map((w) => [source, 'warning', w.path, w.message].filter(Boolean).join(': ')).join('\n');
}

/** Lines like `job.yaml:7:5: spec.nodes.min: must be ≤ spec.nodes.max (got 4 > 2)`. */
export function formatSpecErrors(errors: readonly SpecError[], source?: string): string {
  return errors
    .map((e) => {
      let where = source ?? '';
      if (source && e.line !== undefined) where += `:${e.line}:${e.column ?? 1}`;
      return [where, e.path, e.message].filter(Boolean).join(': ');
    })
    .join('\n');
}
