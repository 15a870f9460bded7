// Property test: whatever a user (or a broken generator) writes, the parser answers with a
// resolved spec or with errors that name a field; it never throws. Specs are generated from
// the spec's own JSON Schema (known keys, plausible and junk values) plus unknown keys.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { LIMITS, parseJobSpec, parseJobSpecText, type JobSpecResult } from './index.ts';
import { renderJobSpecJsonSchema } from './jsonSchema.ts';
import { DURATION_PATTERN } from './units.ts';

interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  anyOf?: SchemaNode[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
}

/** A fixed seed keeps CI repeatable; FUZZ_SEED=<n> explores other corners. */
const SEED = Number(process.env.FUZZ_SEED ?? 18);
const opts = { cwd: '/home/ada/project', env: { USER: 'ada' } };

const junkKey = fc.oneof(
  fc.constantFrom('nproc_per_node', 'max_restarts', 'nnodes', 'rdzv_conf', 'master_addr', 'timeout', '__proto__', 'constructor', 'toString', '', 'x y', 'nodez'),
  fc.string({ maxLength: 12 }),
);
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, undefined, true, false, 0, -1, 1.5, 1e21, Number.NaN, Infinity, '', ' ', '10', '..', '../../etc', '/abs', 'a'.repeat(LIMITS.text + 1)),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 20 }),
  fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(null), fc.object({ maxDepth: 1 })), { maxLength: 4 }),
  fc.dictionary(junkKey, fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(null)), { maxKeys: 3 }),
);

const DURATIONS = ['200ms', '2s', '5m', '1h', '1h30m', '0s', '720h', '721h', 10, '10', '1d', '-5s'];
const SAMPLE_STRINGS = ['python3', 'python3 train.py', 'train.py', 'ckpt', '../ckpt', '/data/ckpt', 'a/../b', 'SIGKILL', 'http://127.0.0.1:8265', 'Exists', 'x'];

/**
 * Values for one schema node: plausible ones (defaults, enums, numbers around the bounds,
 * sample strings) and, when `wild`, now and then junk of any type.
 */
function valueFor(node: SchemaNode, depth: number, wild: boolean): fc.Arbitrary<unknown> {
  const plausible: fc.Arbitrary<unknown>[] = [];
  if (node.properties && depth < 6) plausible.push(objectFor(node, depth + 1, wild));
  if (node.anyOf) plausible.push(...node.anyOf.map((n) => valueFor(n, depth + 1, wild)));
  if (node.enum) plausible.push(fc.constantFrom(...node.enum));
  if (node.const !== undefined) plausible.push(fc.constant(node.const));
  if (node.default !== undefined) plausible.push(fc.constant(node.default));
  if (node.pattern === DURATION_PATTERN.source) plausible.push(fc.constantFrom(...DURATIONS));
  const types = [node.type ?? []].flat();
  if (types.includes('integer') || types.includes('number')) {
    const edges = [node.minimum, node.maximum].filter((n): n is number => n !== undefined).flatMap((n) => [n - 1, n, n + 1]);
    plausible.push(fc.oneof(fc.integer({ min: -2, max: 300_000 }), ...(edges.length ? [fc.constantFrom(...edges)] : [])));
  }
  if (types.includes('string')) plausible.push(fc.oneof(fc.constantFrom(...SAMPLE_STRINGS), fc.string({ maxLength: 10 })));
  if (types.includes('boolean')) plausible.push(fc.boolean());
  if (types.includes('array') && depth < 6) plausible.push(fc.array(node.items ? valueFor(node.items, depth + 1, wild) : junk, { maxLength: 3 }));
  if (types.includes('object') && !node.properties) {
    const value = typeof node.additionalProperties === 'object' ? valueFor(node.additionalProperties, depth + 1, wild) : junk;
    plausible.push(fc.dictionary(fc.oneof(junkKey, fc.constantFrom('RANK', 'OMP_NUM_THREADS', 'team')), value, { maxKeys: 3 }));
  }
  if (plausible.length === 0) return junk;
  if (!wild) return fc.oneof(...plausible);
  return fc.oneof({ arbitrary: fc.oneof(...plausible), weight: 9 }, { arbitrary: junk, weight: 1 });
}

/** Up to 5 of the known fields, plus (when `wild`) now and then an unknown key. */
function objectFor(node: SchemaNode, depth: number, wild: boolean): fc.Arbitrary<Record<string, unknown>> {
  const known = Object.fromEntries(Object.entries(node.properties ?? {}).map(([k, child]) => [k, valueFor(child, depth, wild)]));
  const some = fc.subarray(Object.keys(known), { maxLength: Math.min(5, Object.keys(known).length) }).chain((keys) => fc.record(Object.fromEntries(keys.map((k) => [k, known[k]!]))));
  if (!wild) return some;
  const extra = fc.oneof({ arbitrary: fc.constant({}), weight: 4 }, { arbitrary: fc.dictionary(junkKey, junk, { maxKeys: 2 }), weight: 1 });
  return fc.tuple(some, extra).map(([fields, unknown]) => ({ ...unknown, ...fields }));
}

const ROOT = JSON.parse(renderJobSpecJsonSchema()) as SchemaNode;
/** Every field of the schema with its dotted path (list items and map values not included). */
function leaves(node: SchemaNode, prefix: string[] = []): { path: string[]; node: SchemaNode }[] {
  return Object.entries(node.properties ?? {}).flatMap(([key, child]) => [{ path: [...prefix, key], node: child }, ...leaves(child, [...prefix, key])]);
}

/** The smallest valid spec with a few fields set to plausible values: reaches valid specs too. */
const nearlyValid = fc
  .array(
    fc.constantFrom(...leaves(ROOT)).chain(({ path, node }) => valueFor(node, path.length, false).map((value) => ({ path, value }))),
    { maxLength: 4 },
  )
  .map((changes) => {
    const spec: Record<string, any> = { metadata: { name: 'job' }, spec: { entrypoint: { command: 'python3', args: ['train.py'] } } };
    for (const { path, value } of changes) {
      let at = spec;
      for (const key of path.slice(0, -1)) {
        if (typeof at[key] !== 'object' || at[key] === null || Array.isArray(at[key])) at[key] = {};
        at = at[key];
      }
      at[path.at(-1)!] = value;
    }
    return spec;
  });

/** Wild specs (any known key, junk values, unknown keys) find crashes; nearly valid ones find wrong answers. */
const spec = fc.oneof(objectFor(ROOT, 0, true), nearlyValid);

function checkResult(result: JobSpecResult): void {
  if (result.ok) {
    const { nodes, nprocPerNode } = result.spec.spec;
    expect(nodes.min <= nodes.initial && nodes.initial <= nodes.max && nodes.max <= LIMITS.nodes).toBe(true);
    expect(nprocPerNode).toBeLessThanOrEqual(LIMITS.nprocPerNode);
    expect(() => JSON.stringify(result.spec)).not.toThrow();
    return;
  }
  expect(result.errors.length).toBeGreaterThan(0);
  // Plain checks, not one expect per error: thousands of errors go through here.
  const bad = result.errors.find((e) => e.path === '' || !/\S/.test(e.message) || ZOD_WORDING.test(e.message));
  if (bad) expect.fail(`error without a field path or a message of ours: ${JSON.stringify(bad)}`);
}

/** zod's own English ("Invalid input: …"), or a value rendered raw: a message of ours is missing. */
const ZOD_WORDING = /^Invalid|^Too (big|small)|undefined|\[object Object\]/;

describe('fuzzing the spec parser', () => {
  it('never throws on 10,000 generated specs; every error names a field path', () => {
    let valid = 0;
    fc.assert(
      fc.property(spec, (input) => {
        const result = parseJobSpec(input, opts);
        if (result.ok) valid++;
        checkResult(result);
      }),
      { numRuns: 10_000, seed: SEED },
    );
    // The generator reaches both sides: some specs pass, most fail somewhere.
    expect(valid).toBeGreaterThan(0);
  });

  it('gives the same answer through YAML text, with a line for every error', () => {
    fc.assert(
      fc.property(spec, (input) => {
        const result = parseJobSpecText(stringify(input), opts);
        checkResult(result);
        if (!result.ok) for (const error of result.errors) expect(error.line).toBeGreaterThan(0);
      }),
      { numRuns: 1_000, seed: SEED },
    );
  });
});
