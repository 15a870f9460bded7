// Turns zod issues into SpecErrors: one per problem, with a dotted field path and a message
// that says what is wrong and how to fix it.
import { z } from 'zod';

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
      return `must be ${expected} (got ${describeValue(iss.input)})`;
    }
    default:
      return undefined;
  }
};

/** Converts zod issues; `schema` lists the allowed keys when a key is unknown. */
export function toSpecIssues(issues: readonly z.core.$ZodIssue[], schema: z.ZodType): SpecIssue[] {
  const out: SpecIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const allowed = fieldsAt(schema, issue.path);
      for (const key of issue.keys) {
        const guess = closest(key, allowed);
        const hint = guess ? `did you mean "${guess}"? ` : '';
        out.push({ segments: [...issue.path, key], message: `unknown field; ${hint}allowed here: ${allowed.join(', ')}` });
      }
    } else if (issue.code === 'invalid_key') {
      out.push({ segments: issue.path, message: issue.issues[0]?.message ?? issue.message });
    } else {
      out.push({ segments: issue.path, message: issue.message });
    }
  }
  return out;
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

/** Field names of the object schema found by following `path` through wrappers. */
function fieldsAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node: z.ZodType | undefined = unwrap(schema);
  for (const seg of path) {
    if (node instanceof z.ZodObject) node = node.shape[String(seg)] as z.ZodType | undefined;
    else if (node instanceof z.ZodArray) node = node.element as z.ZodType;
    else if (node instanceof z.ZodRecord) node = node.valueType as z.ZodType;
    else return [];
    if (!node) return [];
    node = unwrap(node);
  }
  return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}

function unwrap(schema: z.ZodType): z.ZodType {
  let node = schema;
  for (;;) {
    if (node instanceof z.ZodOptional || node instanceof z.ZodDefault || node instanceof z.ZodPrefault) {
      node = node.unwrap() as z.ZodType;
    } else if (node instanceof z.ZodPipe) {
      node = node.in as z.ZodType;
    } else {
      return node;
    }
  }
}

/** The allowed key a typo most likely meant: same letters ignoring case, or ≤ 2 edits away. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = candidate.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
