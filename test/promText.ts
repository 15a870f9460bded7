// A strict parser of the Prometheus text exposition format (version 0.0.4), for tests: it
// throws on any line a Prometheus server would reject, naming the line.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** Metric family → type (counter, gauge, histogram, summary, untyped). */
  types: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];
const SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created', '_info'];

export function parsePrometheusText(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const fail = (why: string): never => {
      throw new Error(`line ${i + 1}: ${why}: ${JSON.stringify(raw)}`);
    };
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line);
      if (!m) return; // a plain comment
      if (!NAME.test(m[2]!)) fail('bad metric name');
      if (m[1] === 'TYPE') {
        if (!TYPES.includes(m[3] ?? '')) fail('unknown type');
        if (types.has(m[2]!)) fail('second TYPE line for the family');
        types.set(m[2]!, m[3]!);
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$/.exec(line);
    if (!m) fail('not a sample');
    const [, name, , labelText, valueText] = m!;
    const value = parseValue(valueText!) ?? fail('bad value');
    samples.push({ name: name!, labels: labelText ? parseLabels(labelText, fail) : {}, value });
  });
  for (const s of samples) {
    const family = familyOf(s.name, types);
    if (family === undefined) throw new Error(`sample ${s.name} has no TYPE line`);
  }
  return { types, samples };
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  const suffix = SUFFIXES.find((x) => name.endsWith(x));
  const base = suffix ? name.slice(0, -suffix.length) : undefined;
  return base !== undefined && types.has(base) ? base : undefined;
}

function parseValue(text: string): number | undefined {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  // Prometheus parses floats as Go does, case-insensitively: prom-client writes an empty
  // event-loop-lag histogram's mean as "Nan".
  if (text.toLowerCase() === 'nan') return NaN;
  const n = Number(text);
  return Number.isNaN(n) ? undefined : n;
}

function parseLabels(text: string, fail: (why: string) => never): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const m = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"\s*(,|$)/.exec(rest);
    if (!m || !LABEL_NAME.test(m[1]!)) fail('bad labels');
    if (m![1]! in labels) fail(`label ${m![1]} twice`);
    labels[m![1]!] = m![2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    rest = rest.slice(m![0].length);
  }
  return labels;
}

/** Sum of the samples called `name` whose labels include `labels`. */
export function sampleSum(exp: Exposition, name: string, labels: Record<string, string> = {}): number {
  return exp.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
