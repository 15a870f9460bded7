// Parsing a job spec from a value, YAML/JSON text or a file, then resolving it (resolve.ts).
// `loadJobSpecFile` is the one way the CLI reads a spec: `rover validate` and `rover submit`
// resolve paths and warn the same way.
import { open } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { formatPath, specErrorMap, toSpecIssues, type SpecError, type SpecIssue } from './errors.ts';
import { localFileWarnings, resolveJobSpec, type ResolveOptions } from './resolve.ts';
import { jobSpecSchema, type ParsedJobSpec } from './schema.ts';
import type { JobSpec } from './types.ts';

export type JobSpecResult = { ok: true; spec: JobSpec } | { ok: false; errors: SpecError[] };
/** A file's spec also carries warnings: problems worth saying that do not stop a submit. */
export type JobSpecFileResult = { ok: true; spec: JobSpec; warnings: SpecError[] } | { ok: false; errors: SpecError[] };

/** A spec is a page of YAML; anything past this is not one. */
const MAX_SPEC_BYTES = 1024 * 1024;

/** Validates a parsed YAML/JSON value and resolves it into a JobSpec. */
export function parseJobSpec(input: unknown, opts: ResolveOptions = {}): JobSpecResult {
  const checked = checkJobSpec(input);
  if (!checked.ok) return { ok: false, errors: checked.issues.map((i) => ({ path: formatPath(i.segments), message: i.message })) };
  return { ok: true, spec: resolveJobSpec(checked.parsed, opts) };
}

/** Parses YAML or JSON text; errors carry the line and column they point at. */
export function parseJobSpecText(text: string, opts: ResolveOptions = {}): JobSpecResult {
  if (text.length > MAX_SPEC_BYTES) {
    return { ok: false, errors: [{ path: '', message: `the spec is larger than 1 MiB (${text.length} characters); a job spec is a page of YAML` }] };
  }
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

/**
 * Reads a YAML or JSON job spec file and resolves it. Relative local paths in it (workdir,
 * checkpoint.dir) mean relative to the file's folder, which is also the default workdir; the
 * warnings say when the entrypoint's script is not there. An unreadable file is an error, not
 * a throw.
 */
export async function loadJobSpecFile(file: string, opts: ResolveOptions = {}): Promise<JobSpecFileResult> {
  const absolute = path.resolve(opts.cwd ?? process.cwd(), file);
  const text = await readSpecText(absolute);
  if (!text.ok) return { ok: false, errors: [{ path: '', message: text.message }] };
  const result = parseJobSpecText(text.value, { ...opts, baseDir: opts.baseDir ?? path.dirname(absolute) });
  if (!result.ok) return result;
  return { ok: true, spec: result.spec, warnings: await localFileWarnings(result.spec) };
}

/** The file's text, refusing anything too big to be a spec before reading it all. */
async function readSpecText(file: string): Promise<{ ok: true; value: string } | { ok: false; message: string }> {
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      if (size > MAX_SPEC_BYTES) return { ok: false, message: `the file is larger than 1 MiB (${size} bytes); a job spec is a page of YAML` };
      return { ok: true, value: await handle.readFile('utf8') };
    } finally {
      await handle.close();
    }
  } catch (err) {
    return { ok: false, message: `cannot read the file: ${(err as Error).message}` };
  }
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
