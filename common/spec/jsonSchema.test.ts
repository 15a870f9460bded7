import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { JSON_SCHEMA_FILE, renderJobSpecJsonSchema } from './jsonSchema.ts';

const README = readFileSync(new URL('../../docs/spec-reference.md', import.meta.url), 'utf8');

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
}

/** Dotted paths of every object property, nested objects included (not list items or maps). */
function fieldPaths(node: SchemaNode, prefix = ''): string[] {
  return Object.entries(node.properties ?? {}).flatMap(([key, child]) => {
    const here = prefix ? `${prefix}.${key}` : key;
    return [here, ...fieldPaths(child, here)];
  });
}

describe('JSON Schema of the job spec', () => {
  it('the committed deploy/schema/elasticjob.schema.json equals a fresh generation', () => {
    const fix = 'run `npx tsx common/spec/jsonSchema.ts --write` and commit the file';
    expect(readFileSync(JSON_SCHEMA_FILE, 'utf8'), fix).toBe(renderJobSpecJsonSchema());
  });

  it('describes the input side: defaults shown, only name and entrypoint.command required', () => {
    const schema = JSON.parse(renderJobSpecJsonSchema());
    expect(schema.required).toEqual(['metadata', 'spec']);
    expect(schema.additionalProperties).toBe(false);
    const spec = schema.properties.spec;
    expect(spec.required).toEqual(['entrypoint']);
    expect(spec.properties.entrypoint.required).toEqual(['command']);
    expect(spec.properties.faultTolerance.properties.heartbeatTimeout.default).toBe('30s');
    expect(spec.properties.resources.properties.memory.default).toBe('2Gi');
  });

  it('every field appears in the reference table of docs/spec-reference.md', () => {
    const paths = fieldPaths(JSON.parse(renderJobSpecJsonSchema()));
    expect(paths.length).toBeGreaterThan(50);
    expect(paths.filter((p) => !README.includes(`| \`${p}\` |`))).toEqual([]);
  });
});
