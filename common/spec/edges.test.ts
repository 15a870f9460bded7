// Edge cases of the spec: missing and empty sections, upper bounds, paths, bare-number
// durations, the list form of entrypoint.command, and did-you-mean for foreign keys.
import { describe, expect, it } from 'vitest';
import { parseJobSpec, parseJobSpecText, type SpecError } from './index.ts';

const opts = { cwd: '/home/ada/project', env: { USER: 'ada' } };

function minimal(): Record<string, any> {
  return { metadata: { name: 'job' }, spec: { entrypoint: { command: 'python3', args: ['train.py'] } } };
}

function errorsOf(input: unknown): SpecError[] {
  const result = typeof input === 'string' ? parseJobSpecText(input, opts) : parseJobSpec(input, opts);
  if (result.ok) throw new Error('expected the spec to be rejected');
  return result.errors;
}

/** The one error on `path`, with line and column dropped. */
function errorAt(input: unknown, path: string): string {
  const errors = errorsOf(input);
  const hit = errors.filter((e) => e.path === path);
  expect(hit, `errors were: ${JSON.stringify(errors)}`).toHaveLength(1);
  return hit[0]!.message;
}

describe('missing and empty sections', () => {
  it.each([
    ['no spec section', 'metadata: {name: a}\n', 'spec', 'is required: the job itself, at least spec.entrypoint.command (see examples/demo.yaml)'],
    ['an empty spec section', 'metadata: {name: a}\nspec:\n', 'spec', 'is empty: the job itself, at least spec.entrypoint.command (see examples/demo.yaml)'],
    ['no metadata section', 'spec: {entrypoint: {command: x}}\n', 'metadata', 'is required: it needs at least the job name, e.g. metadata: {name: my-job}'],
    ['an empty metadata section', 'metadata:\nspec: {entrypoint: {command: x}}\n', 'metadata', 'is empty: it needs at least the job name, e.g. metadata: {name: my-job}'],
    ['an empty spec mapping', 'metadata: {name: a}\nspec: {}\n', 'spec.entrypoint', 'is required: what each training process runs, e.g. entrypoint: {command: [python3, train.py]}'],
    ['an empty entrypoint', 'metadata: {name: a}\nspec:\n  entrypoint:\n', 'spec.entrypoint', 'is empty: what each training process runs, e.g. entrypoint: {command: [python3, train.py]}'],
    ['an empty optional section', 'metadata: {name: a}\nspec:\n  nodes:\n  entrypoint: {command: x}\n', 'spec.nodes', 'is empty: give it fields or remove the line'],
    ['an empty list', 'metadata: {name: a}\nspec:\n  entrypoint: {command: x, args: }\n', 'spec.entrypoint.args', 'is empty: give it items (e.g. [a, b]) or remove the line'],
    ['a failure rule without a class', 'metadata: {name: a}\nspec:\n  entrypoint: {command: x}\n  faultTolerance: {failureRules: [{exitCodes: [3]}]}\n',
      'spec.faultTolerance.failureRules[0].class', 'is required: one of "transient", "nodeFault", "userError"'],
  ])('%s is an error on its own path', (_, text, path, message) => {
    expect(errorAt(text, path)).toBe(message);
  });

  it('a document that is not a mapping is one error about the whole file', () => {
    expect(errorsOf('- a\n- b\n')).toEqual([{ path: '', message: 'the spec must be a mapping with metadata and spec (got a list)', line: 1, column: 1 }]);
  });
});

type Change = (s: Record<string, any>) => void;
/** [field, a value just past its bound, the message] */
const BOUNDS: [string, string, Change][] = [
  ['spec.nodes.max', 'must be ≤ 100000 (got 100001)', (s) => (s.spec.nodes = { max: 100_001 })],
  ['spec.nodes.min', 'must be ≤ 100000 (got 200000)', (s) => (s.spec.nodes = { min: 200_000, max: 200_000 })],
  ['spec.nodes.initial', 'must be ≤ 100000 (got 1000000)', (s) => (s.spec.nodes = { initial: 1_000_000 })],
  ['spec.nodes.unit', 'must be ≤ 100000 (got 100001)', (s) => (s.spec.nodes = { unit: 100_001 })],
  ['spec.nprocPerNode', 'must be ≤ 1024 (got 1025)', (s) => (s.spec.nprocPerNode = 1025)],
  ['spec.resources.gpu', 'must be ≤ 1024 (got 2000)', (s) => (s.spec.resources = { gpu: 2000 })],
  ['spec.resources.cpu', 'must be at most 4096 cores per node', (s) => (s.spec.resources = { cpu: 5000 })],
  ['spec.resources.memory', 'must be at most 64Ti per node', (s) => (s.spec.resources = { memory: '65Ti' })],
  ['spec.faultTolerance.maxProcessRestarts', 'must be ≤ 10000 (got 10001)', (s) => (s.spec.faultTolerance = { maxProcessRestarts: 10_001 })],
  ['spec.faultTolerance.maxNodeRelaunches', 'must be ≤ 10000 (got 1e+21)', (s) => (s.spec.faultTolerance = { maxNodeRelaunches: 1e21 })],
  ['spec.faultTolerance.hangTimeout', 'must be at most 720h (30 days) (got 721h)', (s) => (s.spec.faultTolerance = { hangTimeout: '721h' })],
  ['spec.rendezvous.joinTimeout', 'must be at most 720h (30 days) (got 1000h)', (s) => (s.spec.rendezvous = { joinTimeout: '1000h' })],
  ['spec.autoScaling.interval', 'must be at most 720h (30 days) (got 43201m)', (s) => (s.spec.autoScaling = { interval: '43201m' })],
  ['spec.diagnosis.timeout', 'must be at most 720h (30 days)', (s) => (s.spec.diagnosis = { timeout: '2592000001ms' })],
  ['spec.diagnosis.probeBytes', 'must be ≤ 1073741824', (s) => (s.spec.diagnosis = { probeBytes: 2 ** 31 })],
  ['spec.dataset.size', 'must be ≤ 1000000000000', (s) => (s.spec.dataset = { size: 1e13, shardSize: 1e7 })],
  ['spec.dataset.shardSize', 'is too small: 10000000 samples make 10000000 shards per epoch, at most 1000000 are allowed (use shardSize ≥ 10)', (s) => (s.spec.dataset = { size: 1e7, shardSize: 1 })],
  ['spec.dataset.epochs', 'must be ≤ 10000', (s) => (s.spec.dataset = { size: 10, shardSize: 1, epochs: 10_001 })],
  ['spec.dataset.seed', 'must be ≤ 4294967295', (s) => (s.spec.dataset = { size: 10, shardSize: 1, seed: 2 ** 32 })],
  ['spec.dataset.maxRetries', 'must be ≤ 1000', (s) => (s.spec.dataset = { size: 10, shardSize: 1, maxRetries: 1001 })],
  ['spec.dataset.leaseTimeout', 'must be at most 720h (30 days)', (s) => (s.spec.dataset = { size: 10, shardSize: 1, leaseTimeout: '9999h' })],
  ['spec.checkpoint.keep', 'must be ≤ 1000 (got 1001)', (s) => (s.spec.checkpoint = { keep: 1001 })],
  ['spec.faultTolerance.failureRules[0].exitCodes[0]', 'must be ≤ 255 (got 256)', (s) => (s.spec.faultTolerance = { failureRules: [{ exitCodes: [256], class: 'transient' }] })],
  ['spec.kubernetes.tolerations[0].tolerationSeconds', 'must be ≤ 2592000', (s) => Object.assign(s.spec, { backend: 'kubernetes', kubernetes: { image: 'i', tolerations: [{ tolerationSeconds: 2_592_001 }] } })],
  ['spec.ray.resources.TPU', 'must be ≤ 1000000000000000', (s) => (s.spec.ray = { resources: { TPU: 1e16 } })],
  ['spec.entrypoint.args[0]', 'must be at most 4096 characters long (got 4097)', (s) => (s.spec.entrypoint.args = ['a'.repeat(4097)])],
  ['spec.entrypoint.env.BIG', 'must be at most 4096 characters long (got 5000)', (s) => (s.spec.entrypoint.env = { BIG: 'x'.repeat(5000) })],
  ['spec.entrypoint.command', 'must be at most 4096 characters long', (s) => (s.spec.entrypoint.command = 'p'.repeat(4097))],
  ['spec.entrypoint.workdir', 'must be at most 4096 characters long', (s) => (s.spec.entrypoint.workdir = 'd'.repeat(4097))],
  ['spec.kubernetes.image', 'must be at most 4096 characters long', (s) => (s.spec.kubernetes = { image: 'i'.repeat(5000) })],
  ['metadata.user', 'must be at most 253 characters long', (s) => (s.metadata.user = 'u'.repeat(254))],
  ['spec.entrypoint.args', 'must have at most 1000 items', (s) => (s.spec.entrypoint.args = Array.from({ length: 1001 }, () => 'a'))],
  ['spec.kubernetes.nodeSelector', 'must have at most 1000 entries', (s) => (s.spec.kubernetes = { image: 'i', nodeSelector: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, 'v'])) })],
  ['spec.ray.runtimeEnv', 'must be at most 64 KiB as JSON', (s) => (s.spec.ray = { runtimeEnv: { pip: Array.from({ length: 20_000 }, () => 'numpy') } })],
];

describe('upper bounds', () => {
  it.each(BOUNDS)('%s past its bound → %s', (path, message, change) => {
    const input = minimal();
    change(input);
    expect(errorAt(input, path)).toContain(message);
  });

  it('accepts every value at its bound', () => {
    const input = minimal();
    input.spec.nodes = { min: 100_000, max: 100_000 };
    input.spec.nprocPerNode = 1024;
    input.spec.entrypoint.args = ['a'.repeat(4096)];
    input.spec.faultTolerance = { heartbeatInterval: '719h', heartbeatTimeout: '720h', hangTimeout: '30m' };
    input.spec.dataset = { size: 1_000_000, shardSize: 1, seed: 2 ** 32 - 1 };
    const r = parseJobSpec(input, opts);
    expect(r.ok ? [] : r.errors).toEqual([]);
    expect(r.ok && r.spec.spec.faultTolerance.heartbeatTimeout).toBe(30 * 24 * 3_600_000);
  });

  it('refuses a self-referencing YAML value instead of hanging on it', () => {
    const text = 'metadata: {name: a}\nspec:\n  entrypoint: {command: x}\n  backend: ray\n  ray:\n    runtimeEnv: &env\n      again: *env\n';
    expect(errorAt(text, 'spec.ray.runtimeEnv')).toBe('must be plain data (JSON): no self-references');
  });

  it('refuses a spec over 1 MiB before parsing it', () => {
    expect(errorsOf(`# ${'x'.repeat(1024 * 1024)}\n`)[0]!.message).toMatch(/^the spec is larger than 1 MiB/);
  });
});

describe('paths', () => {
  it.each([
    ['spec.checkpoint.dir', '../../../etc/passwd', (s: Record<string, any>, p: string) => (s.spec.checkpoint = { dir: p })],
    ['spec.checkpoint.dir', 'ckpt/../../x', (s: Record<string, any>, p: string) => (s.spec.checkpoint = { dir: p })],
    ['spec.entrypoint.workdir', '..', (s: Record<string, any>, p: string) => (s.spec.entrypoint.workdir = p)],
    ['spec.entrypoint.workdir', '/data/../etc', (s: Record<string, any>, p: string) => (s.spec.entrypoint.workdir = p)],
  ])('%s: %j is refused with the way out', (path, value, change) => {
    const input = minimal();
    change(input, value);
    expect(errorAt(input, path)).toBe(
      `must not contain ".." (got ${JSON.stringify(value)}): write an absolute path, or a relative one that stays inside its folder (local backend: the spec file's folder)`,
    );
  });

  it('accepts absolute paths and relative ones that stay below their folder', () => {
    const input = minimal();
    input.spec.entrypoint.workdir = 'src/./train';
    input.spec.checkpoint = { dir: '/mnt/ckpt..old/run' };
    const r = parseJobSpec(input, opts);
    expect(r.ok && [r.spec.spec.entrypoint.workdir, r.spec.spec.checkpoint.dir]).toEqual(['/home/ada/project/src/train', '/mnt/ckpt..old/run']);
  });

  it('refuses a NUL character in a path', () => {
    const input = minimal();
    input.spec.checkpoint = { dir: 'ckpt\0x' };
    expect(errorAt(input, 'spec.checkpoint.dir')).toBe('must not contain a NUL character');
  });
});

describe('durations need a unit', () => {
  it('a bare number is an error that shows the unit syntax', () => {
    const input = minimal();
    input.spec.rendezvous = { lastCallTimeout: 10 };
    expect(errorAt(input, 'spec.rendezvous.lastCallTimeout')).toBe('give a unit: 10s, 10ms, 5m, 1h30m (got the bare number 10; a duration needs one of ms, s, m, h)');
  });

  it('a quoted bare number is the same error', () => {
    expect(errorAt('metadata: {name: a}\nspec:\n  entrypoint: {command: x}\n  faultTolerance: {hangTimeout: "600"}\n', 'spec.faultTolerance.hangTimeout')).toMatch(/^give a unit: 600s, 600ms/);
  });

  it.each([
    ['200ms', 200],
    ['2s', 2000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
  ])('%s reads as %d ms', (text, ms) => {
    const input = minimal();
    input.spec.rendezvous = { lastCallTimeout: text };
    const r = parseJobSpec(input, opts);
    expect(r.ok && r.spec.spec.rendezvous.lastCallTimeout).toBe(ms);
  });

  it('spaces around a duration are named, not reported in zod\'s words', () => {
    const input = minimal();
    input.spec.rendezvous = { joinTimeout: ' 10s' };
    expect(errorAt(input, 'spec.rendezvous.joinTimeout')).toBe('must be 500ms, 30s, 5m, 1h or 1h30m without spaces around it (got " 10s")');
  });
});

describe('entrypoint.command as a list', () => {
  it('[python3, train.py] means command python3 with train.py before the args', () => {
    const r = parseJobSpecText('metadata: {name: a}\nspec:\n  entrypoint: {command: [python3, -u, train.py], args: [--steps, 3]}\n', opts);
    expect(r.ok && r.spec.spec.entrypoint).toEqual({ command: 'python3', args: ['-u', 'train.py', '--steps', '3'], env: {}, workdir: '/home/ada/project' });
  });

  it('a one-item list is the program alone', () => {
    const input = minimal();
    input.spec.entrypoint = { command: ['/opt/my tools/run'] };
    const r = parseJobSpec(input, opts);
    expect(r.ok && r.spec.spec.entrypoint).toMatchObject({ command: '/opt/my tools/run', args: [] });
  });

  it.each([
    ['an empty list', [], 'spec.entrypoint.command', 'must not be empty: the first item is the program (e.g. [python3, train.py])'],
    ['an empty program', ['', 'train.py'], 'spec.entrypoint.command[0]', 'must not be empty: it is the program to run'],
    ['a mapping as an item', ['python3', { a: 1 }], 'spec.entrypoint.command[1]', 'must be a string (got a mapping)'],
    ['a mapping', { program: 'python3' }, 'spec.entrypoint.command', 'must be a program name or a list [program, args…] (got a mapping)'],
  ])('%s is an error naming the item', (_, command, path, message) => {
    const input = minimal();
    input.spec.entrypoint.command = command;
    expect(errorAt(input, path)).toBe(message);
  });

  it('a string with arguments in it points at the list form', () => {
    const input = minimal();
    input.spec.entrypoint.command = 'python3 train.py';
    expect(errorAt(input, 'spec.entrypoint.command')).toContain('or write a list (e.g. command: [python3, train.py])');
  });
});

/** [key as written, where, the hint in the message] */
const FOREIGN_KEYS: [string, string, string][] = [
  ['nproc_per_node', 'spec', 'did you mean "nprocPerNode"? (Rover\'s keys are camelCase)'],
  ['nproc-per-node', 'spec', 'did you mean "nprocPerNode"?'],
  ['nnodes', 'spec', 'did you mean "nodes"? (torchrun\'s --nnodes MIN:MAX is nodes: {min: MIN, max: MAX})'],
  ['max_restarts', 'spec', 'did you mean "spec.faultTolerance.maxProcessRestarts"? (torchrun\'s --max-restarts)'],
  ['max_restarts', 'spec.faultTolerance', 'did you mean "maxProcessRestarts"? (torchrun\'s --max-restarts)'],
  ['max_nodes', 'spec', 'did you mean "spec.nodes.max"?'],
  ['min_nodes', 'spec.nodes', 'did you mean "min"?'],
  ['rdzv_conf', 'spec', 'did you mean "rendezvous"? (torchrun\'s --rdzv-conf)'],
  ['rdzv_timeout', 'spec', 'did you mean "spec.rendezvous.joinTimeout"?'],
  ['timeout', 'spec.rendezvous', 'did you mean "joinTimeout"?'],
  ['last_call_timeout', 'spec.rendezvous', 'did you mean "lastCallTimeout"? (Rover\'s keys are camelCase)'],
  ['monitor_interval', 'spec', 'did you mean "spec.faultTolerance.heartbeatInterval"? (torchrun\'s --monitor-interval)'],
  ['master_addr', 'spec', "torchrun's --master-addr: Rover runs the rendezvous and sets MASTER_ADDR, MASTER_PORT and the ranks itself; remove it;"],
  ['heartbeat_timeout', 'spec', 'did you mean "spec.faultTolerance.heartbeatTimeout"?'],
  ['image', 'spec', 'did you mean "spec.kubernetes.image"?'],
  ['working_dir', 'spec.entrypoint', 'did you mean "workdir"?'],
  ['shard_size', 'spec.dataset', 'did you mean "shardSize"?'],
  ['max_steps', 'spec', 'did you mean "maxSteps"? (Rover\'s keys are camelCase)'],
  ['steps', 'spec', 'did you mean "maxSteps"? (the step target that progress and ETA are measured toward)'],
  ['max_steps', 'spec.dataset', 'did you mean "spec.maxSteps"?'],
];

describe('did you mean', () => {
  it.each(FOREIGN_KEYS)('%s under %s → %s', (key, where, hint) => {
    const input = minimal();
    let at = input;
    for (const seg of where.split('.')) at = at[seg] ??= seg === 'dataset' ? { size: 10, shardSize: 1 } : {};
    at[key] = 1;
    const path = /^[A-Za-z_$][\w$-]*$/.test(key) ? `${where}.${key}` : `${where}["${key}"]`;
    const message = errorAt(input, path);
    expect(message).toMatch(/^unknown field; /);
    expect(message).toContain(hint);
    expect(message).toMatch(/ allowed here: /);
  });

  it('keeps suggesting typos of the keys allowed here', () => {
    const input = minimal();
    input.spec.nodez = {};
    expect(errorAt(input, 'spec.nodez')).toMatch(/^unknown field; did you mean "nodes"\? allowed here: backend, /);
  });

  it('does not take Object.prototype names for fields', () => {
    const input = minimal();
    input.spec.constructor = 1;
    input.spec.entrypoint.toString = 'x';
    const errors = errorsOf(input);
    expect(errors.map((e) => e.path).sort()).toEqual(['spec.constructor', 'spec.entrypoint.toString']);
    for (const e of errors) expect(e.message).toMatch(/^unknown field; allowed here: /);
  });
});
