// Parsing a job spec from a value, YAML/JSON text or a file, and filling in the defaults that
// depend on where it is submitted from (user, checkpoint folder, working directory).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { formatPath, specErrorMap, toSpecIssues, type SpecError, type SpecIssue } from './errors.ts';
import { jobSpecSchema, rayOptionsSchema, type ParsedJobSpec } from './schema.ts';
import type { JobSpec } from './types.ts';

export type JobSpecResult = { ok: true; spec: JobSpec } | { ok: false; errors: SpecError[] };

export interface ResolveOptions {
  /** Source of the default user ($USER). Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Directory relative local paths are resolved against. Default: process.cwd(). */
  cwd?: string;
}

/** Validates a parsed YAML/JSON value and resolves it into a JobSpec. */
export function parseJobSpec(input: unknown, opts: ResolveOptions = {}): JobSpecResult {
  const checked = checkJobSpec(input);
  if (!checked.ok) return { ok: false, errors: checked.issues.map((i) => ({ path: formatPath(i.segments), message: i.message })) };
  return { ok: true, spec: resolveJobSpec(checked.parsed, opts) };
}

/** Parses YAML or JSON text; errors carry the line and column they point at. */
export function parseJobSpecText(text: string, opts: ResolveOptions = {}): JobSpecResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  if (doc.errors.length > 0) {
    return { ok: false, errors: doc.errors.map((e) => ({ path: '', message: `YAML syntax error: ${e.message}`, ...at(e.pos[0]) })) };
  }
  if (doc.contents === null) {
    return { ok: false, errors: [{ path: '', message: 'the spec is empty; it needs at least metadata.name and spec.entrypoint.command (see examples/)' }] };
  }
  let input: unknown;
  try {
    input = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, errors: [{ path: '', message: `cannot read the YAML: ${(err as Error).message}` }] };
  }
  const checked = checkJobSpec(input);
  if (!checked.ok) {
    const errors = checked.issues.map((i) => ({ path: formatPath(i.segments), message: i.message, ...at(offsetOf(doc, i.segments)) }));
    // In file order, so the list reads top to bottom like the file.
    errors.sort((a, b) => a.line - b.line || a.column - b.column);
    return { ok: false, errors };
  }
  return { ok: true, spec: resolveJobSpec(checked.parsed, opts) };
}

/** Reads a YAML or JSON job spec file; an unreadable file is an error, not a throw. */
export async function loadJobSpecFile(file: string, opts: ResolveOptions = {}): Promise<JobSpecResult> {
  let text: string;
  try {
    text = await readFile(path.resolve(opts.cwd ?? process.cwd(), file), 'utf8');
  } catch (err) {
    return { ok: false, errors: [{ path: '', message: `cannot read the file: ${(err as Error).message}` }] };
  }
  return parseJobSpecText(text, opts);
}

/** Fills the environment-dependent defaults; relative local paths become absolute. */
export function resolveJobSpec(parsed: ParsedJobSpec, opts: ResolveOptions = {}): JobSpec {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const { metadata, spec } = parsed;
  const { name, user, ...otherMetadata } = metadata;
  const { dir, ...otherCheckpoint } = spec.checkpoint;
  // Local processes run on this machine, possibly from another directory: pin paths to the
  // submitter's. Kubernetes and Ray paths live inside the container or the Ray runtime.
  const local = spec.backend === 'local';
  const pin = (p: string) => (local ? path.resolve(cwd, p) : p);
  const workdir = spec.entrypoint.workdir ?? (local ? cwd : undefined);
  return {
    apiVersion: parsed.apiVersion,
    kind: parsed.kind,
    metadata: { name, user: user ?? (env.USER || 'anonymous'), ...otherMetadata },
    spec: {
      ...spec,
      entrypoint: { ...spec.entrypoint, ...(workdir !== undefined && { workdir: pin(workdir) }) },
      ...(spec.backend === 'ray' && { ray: spec.ray ?? rayOptionsSchema.parse({}) }),
      checkpoint: { dir: pin(dir ?? path.join('.rover', 'checkpoints', name)), ...otherCheckpoint },
    },
  };
}

type Checked = { ok: true; parsed: ParsedJobSpec } | { ok: false; issues: SpecIssue[] };

function checkJobSpec(input: unknown): Checked {
  const result = jobSpecSchema.safeParse(input, { error: specErrorMap });
  if (result.success) return { ok: true, parsed: result.data };
  return { ok: false, issues: toSpecIssues(result.error.issues, jobSpecSchema) };
}

/** Offset of the deepest node on `segments` that exists: the key of a field, else its parent. */
function offsetOf(doc: Document, segments: readonly PropertyKey[]): number {
  let node: unknown = doc.contents;
  let offset = doc.contents?.range?.[0] ?? 0;
  for (const seg of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (!pair) break;
      offset = (isScalar(pair.key) ? pair.key.range?.[0] : undefined) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (!isScalar(item) && !isMap(item) && !isSeq(item)) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}
