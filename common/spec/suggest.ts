// "Did you mean …?" for an unknown key. People arrive with torchrun's flags (--nnodes,
// --max-restarts), snake_case habits (nproc_per_node) or a field one level off (heartbeatTimeout
// directly under spec); each gets pointed at the Rover field that does the job.
import { z } from 'zod';

/** Where a foreign key's meaning lives in a Rover spec, or why it has no place there. */
interface Alias {
  /** Dotted path of the Rover field, from the root. */
  target?: string;
  /** Where the key comes from, or what to do instead. */
  note: string;
  /** Only under this parent (for generic words like `timeout`). */
  under?: string;
}

const RENDEZVOUS_IS_OURS = 'Rover runs the rendezvous and sets MASTER_ADDR, MASTER_PORT and the ranks itself; remove it';

/** Keyed by the normalised key (lowercase, no "_" or "-"), so every spelling of a flag matches. */
const ALIASES = new Map<string, Alias>([
  ['nnodes', { target: 'spec.nodes', note: "torchrun's --nnodes MIN:MAX is nodes: {min: MIN, max: MAX}" }],
  ['minnodes', { target: 'spec.nodes.min', note: "torchrun's --nnodes MIN" }],
  ['maxnodes', { target: 'spec.nodes.max', note: "torchrun's --nnodes :MAX" }],
  ['replicas', { target: 'spec.nodes', note: 'a node is one agent; nodes: {min, max}' }],
  ['nodeunit', { target: 'spec.nodes.unit', note: "DLRover's --node-unit" }],
  ['nproc', { target: 'spec.nprocPerNode', note: "torchrun's --nproc-per-node" }],
  ['nprocpernode', { target: 'spec.nprocPerNode', note: "torchrun's --nproc-per-node" }],
  ['maxrestarts', { target: 'spec.faultTolerance.maxProcessRestarts', note: "torchrun's --max-restarts" }],
  ['maxrelaunches', { target: 'spec.faultTolerance.maxNodeRelaunches', note: 'relaunches of a failed node' }],
  ['monitorinterval', { target: 'spec.faultTolerance.heartbeatInterval', note: "torchrun's --monitor-interval" }],
  ['rdzv', { target: 'spec.rendezvous', note: 'rendezvous settings' }],
  ['rdzvconf', { target: 'spec.rendezvous', note: "torchrun's --rdzv-conf" }],
  ['rdzvconfigs', { target: 'spec.rendezvous', note: "torchrun's --rdzv-conf" }],
  ['rdzvtimeout', { target: 'spec.rendezvous.joinTimeout', note: "torchrun's rdzv timeout" }],
  ['rdzvjointimeout', { target: 'spec.rendezvous.joinTimeout', note: "torchrun's rdzv join_timeout" }],
  ['rdzvlastcalltimeout', { target: 'spec.rendezvous.lastCallTimeout', note: "torchrun's rdzv last_call_timeout" }],
  ['timeout', { target: 'spec.rendezvous.joinTimeout', note: "torchrun's rdzv_conf timeout", under: 'spec.rendezvous' }],
  ['rdzvbackend', { note: `torchrun's --rdzv-backend: ${RENDEZVOUS_IS_OURS}` }],
  ['rdzvendpoint', { note: `torchrun's --rdzv-endpoint: ${RENDEZVOUS_IS_OURS}` }],
  ['rdzvid', { note: `torchrun's --rdzv-id: ${RENDEZVOUS_IS_OURS}` }],
  ['masteraddr', { note: `torchrun's --master-addr: ${RENDEZVOUS_IS_OURS}` }],
  ['masterport', { note: `torchrun's --master-port: ${RENDEZVOUS_IS_OURS}` }],
  ['noderank', { note: `torchrun's --node-rank: ${RENDEZVOUS_IS_OURS}` }],
  ['localaddr', { note: `torchrun's --local-addr: ${RENDEZVOUS_IS_OURS}` }],
  ['standalone', { note: `torchrun's --standalone: ${RENDEZVOUS_IS_OURS}` }],
  ['startmethod', { note: "torchrun's --start-method: the agent starts every process itself; remove it" }],
  ['logdir', { note: "torchrun's --log-dir: Rover keeps every process's output (rover logs <job>); remove it" }],
  ['redirects', { note: "torchrun's --redirects: Rover keeps every process's output (rover logs <job>); remove it" }],
  ['tee', { note: "torchrun's --tee: Rover keeps every process's output (rover logs <job>); remove it" }],
  ['module', { target: 'spec.entrypoint.command', note: 'to run a module write command: [python3, -m, my.module]' }],
  ['nopython', { target: 'spec.entrypoint.command', note: 'the command runs as given, nothing is put in front of it' }],
  ['networkcheck', { target: 'spec.diagnosis.nodeCheck', note: "DLRover's --network-check" }],
  ['excludestraggler', { target: 'spec.diagnosis.excludeStragglers', note: "DLRover's --exclude-straggler" }],
  ['workingdir', { target: 'spec.entrypoint.workdir', note: "Kubernetes' workingDir" }],
  ['cwd', { target: 'spec.entrypoint.workdir', note: 'the working directory' }],
  ['cmd', { target: 'spec.entrypoint.command', note: 'the program to run' }],
  ['environment', { target: 'spec.entrypoint.env', note: 'environment variables' }],
  ['steps', { target: 'spec.maxSteps', note: 'the step target that progress and ETA are measured toward' }],
  ['totalsteps', { target: 'spec.maxSteps', note: 'the step target that progress and ETA are measured toward' }],
  ['numsteps', { target: 'spec.maxSteps', note: 'the step target that progress and ETA are measured toward' }],
  ['trainsteps', { target: 'spec.maxSteps', note: 'the step target that progress and ETA are measured toward' }],
  ['targetsteps', { target: 'spec.maxSteps', note: 'the step target that progress and ETA are measured toward' }],
]);

/** The message for `key`, unknown in the object at `parent` (`here` is that path, dotted). */
export function unknownKeyMessage(schema: z.ZodType, parent: readonly PropertyKey[], here: string, key: string): string {
  const allowed = fieldsAt(schema, parent);
  const hint = suggest(schema, here, key, allowed);
  return `unknown field; ${hint ? `${hint} ` : ''}allowed here: ${allowed.join(', ')}`;
}

/** Lowercase without "_" and "-": `nproc_per_node`, `nproc-per-node`, `nprocPerNode` are one key. */
function normalise(key: string): string {
  return key.toLowerCase().replace(/[-_]/g, '');
}

function suggest(schema: z.ZodType, here: string, key: string, allowed: readonly string[]): string | undefined {
  const wanted = normalise(key);
  /** A field's name when it sits next to the key, else its whole path. */
  const name = (target: string) => (target.slice(0, target.lastIndexOf('.')) === here ? target.slice(target.lastIndexOf('.') + 1) : target);

  const sameHere = allowed.find((a) => normalise(a) === wanted);
  if (sameHere) return `did you mean "${sameHere}"?${/[-_]/.test(key) ? " (Rover's keys are camelCase)" : ''}`;

  const alias = ALIASES.get(wanted);
  if (alias && (alias.under === undefined || alias.under === here)) {
    return alias.target ? `did you mean "${name(alias.target)}"? (${alias.note})` : `${alias.note};`;
  }

  const elsewhere = fieldIndex(schema).filter((f) => normalise(f.slice(f.lastIndexOf('.') + 1)) === wanted);
  if (elsewhere.length === 1) return `did you mean "${elsewhere[0]}"?`;

  const typo = closest(key, allowed);
  return typo ? `did you mean "${typo}"?` : undefined;
}

const indexes = new WeakMap<z.ZodType, string[]>();

/** Dotted paths of every object field, nested objects included (not list items or map values). */
function fieldIndex(schema: z.ZodType): string[] {
  let paths = indexes.get(schema);
  if (!paths) {
    paths = [];
    const walk = (node: z.ZodType, prefix: string) => {
      const inner = unwrap(node);
      if (!(inner instanceof z.ZodObject)) return;
      for (const [key, child] of Object.entries(inner.shape as Record<string, z.ZodType>)) {
        const here = prefix ? `${prefix}.${key}` : key;
        paths!.push(here);
        walk(child, here);
      }
    };
    walk(schema, '');
    indexes.set(schema, paths);
  }
  return paths;
}

/** Field names of the object schema found by following `path` through wrappers. */
function fieldsAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let node: z.ZodType | undefined = unwrap(schema);
  for (const seg of path) {
    if (node instanceof z.ZodObject) {
      const shape = node.shape as Record<string, z.ZodType>;
      node = Object.hasOwn(shape, String(seg)) ? shape[String(seg)] : undefined;
    } else if (node instanceof z.ZodArray) node = node.element as z.ZodType;
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
  if (key.length > 64) return undefined;
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
