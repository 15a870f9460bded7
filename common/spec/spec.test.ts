import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatSpecErrors, loadJobSpecFile, parseJobSpec, parseJobSpecText, type SpecError } from './index.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
const opts = { cwd: '/home/ada/project', env: { USER: 'ada' } };

/** The smallest valid spec; each bad case changes one thing in it. */
function minimal(): Record<string, any> {
  return { metadata: { name: 'job' }, spec: { entrypoint: { command: 'python3', args: ['train.py'] } } };
}

function errorsOf(input: unknown): SpecError[] {
  const result = parseJobSpec(input, opts);
  if (result.ok) throw new Error('expected the spec to be rejected');
  return result.errors;
}

describe('example specs', () => {
  it('every examples/*.yaml validates', async () => {
    const files = (await readdir(EXAMPLES)).filter((f) => f.endsWith('.yaml'));
    expect(files).toEqual(expect.arrayContaining(['demo.yaml', 'torch-ddp.yaml', 'kubernetes.yaml', 'ray.yaml', 'sharded.yaml']));
    for (const file of files) {
      const result = await loadJobSpecFile(path.join(EXAMPLES, file), opts);
      expect(result.ok ? [] : formatSpecErrors(result.errors, file)).toEqual([]);
    }
  });

  it('demo.yaml resolves to 2 local nodes × 2 processes of the example trainer, run in examples/', async () => {
    const result = await loadJobSpecFile(path.join(EXAMPLES, 'demo.yaml'), opts);
    if (!result.ok) throw new Error(formatSpecErrors(result.errors));
    const { spec } = result.spec;
    expect(spec.backend).toBe('local');
    expect(spec.nodes).toEqual({ min: 2, max: 2, initial: 2, unit: 1 });
    expect(spec.nprocPerNode).toBe(2);
    expect(spec.entrypoint).toEqual({ command: 'python3', args: ['trainer.py', '--steps', '30', '--step-time', '0.1'], env: {}, workdir: path.resolve(EXAMPLES) });
    expect(result.warnings).toEqual([]);
  });
});

describe('defaults', () => {
  it('fills every default of a minimal spec, durations in ms and memory in bytes', () => {
    const result = parseJobSpec(minimal(), opts);
    expect(result).toEqual({
      ok: true,
      spec: {
        apiVersion: 'rover.dev/v1',
        kind: 'ElasticJob',
        metadata: { name: 'job', user: 'ada', labels: {} },
        spec: {
          backend: 'local',
          nodes: { min: 1, max: 1, initial: 1, unit: 1 },
          nprocPerNode: 1,
          entrypoint: { command: 'python3', args: ['train.py'], env: {}, workdir: '/home/ada/project' },
          resources: { cpu: 1, memory: 2 * 2 ** 30, gpu: 0 },
          faultTolerance: { maxProcessRestarts: 3, maxNodeRelaunches: 3, heartbeatInterval: 5000, heartbeatTimeout: 30_000, hangTimeout: 1_800_000, startupTimeout: 1_800_000, pendingTimeout: 900_000, checkpointTimeout: 1_800_000, hangAction: 'restart', failureRules: [] },
          rendezvous: { lastCallTimeout: 10_000, joinTimeout: 300_000 },
          autoScaling: { enabled: false, interval: 300_000 },
          checkpoint: { dir: '/home/ada/project/.rover/checkpoints/job', keep: 3, flash: false },
          diagnosis: { nodeCheck: 'auto', probeBytes: 1_048_576, timeout: 30_000, excludeStragglers: false, relaunchStragglers: false },
        },
      },
    });
  });

  it('takes the user from $USER, else "anonymous"; an explicit user wins', () => {
    const user = (input: unknown, env: NodeJS.ProcessEnv) => {
      const r = parseJobSpec(input, { env });
      return r.ok ? r.spec.metadata.user : undefined;
    };
    expect(user(minimal(), {})).toBe('anonymous');
    const spec = minimal();
    spec.metadata.user = 'grace';
    expect(user(spec, { USER: 'ada' })).toBe('grace');
  });

  it('pins relative local paths to cwd but leaves container paths alone', () => {
    const local = minimal();
    local.spec.entrypoint.workdir = 'sub';
    local.spec.checkpoint = { dir: 'ckpt' };
    const r1 = parseJobSpec(local, opts);
    expect(r1.ok && [r1.spec.spec.entrypoint.workdir, r1.spec.spec.checkpoint.dir]).toEqual(['/home/ada/project/sub', '/home/ada/project/ckpt']);

    const k8s = minimal();
    k8s.spec.backend = 'kubernetes';
    k8s.spec.kubernetes = { image: 'python:3.12' };
    const r2 = parseJobSpec(k8s, opts);
    expect(r2.ok && r2.spec.spec.entrypoint.workdir).toBeUndefined();
    expect(r2.ok && r2.spec.spec.checkpoint.dir).toBe('.rover/checkpoints/job');
    expect(r2.ok && r2.spec.spec.kubernetes).toEqual({ image: 'python:3.12', namespace: 'default', imagePullSecrets: [], nodeSelector: {}, tolerations: [] });
  });

  it('fills ray options for the ray backend even when the block is left out', () => {
    const spec = minimal();
    spec.spec.backend = 'ray';
    const r = parseJobSpec(spec, opts);
    expect(r.ok && r.spec.spec.ray).toEqual({ address: 'http://127.0.0.1:8265', runtimeEnv: {}, resources: {} });
  });

  it('turns YAML numbers in args and env into strings', () => {
    const r = parseJobSpecText('metadata: {name: j}\nspec:\n  entrypoint: {command: x, args: [--steps, 30, --fast, true], env: {OMP_NUM_THREADS: 4}}\n', opts);
    expect(r.ok && r.spec.spec.entrypoint).toMatchObject({ args: ['--steps', '30', '--fast', 'true'], env: { OMP_NUM_THREADS: '4' } });
  });

  it('keeps spec.entrypoint.preload for python script and -m entrypoints, and leaves it out when empty', () => {
    const spec = minimal();
    spec.spec.entrypoint = { command: ['/opt/venv/bin/python', '-u'], args: ['-m', 'pkg.train'], preload: ['torch', 'torch.distributed'] };
    const r = parseJobSpec(spec, opts);
    expect(r.ok && r.spec.spec.entrypoint).toMatchObject({ command: '/opt/venv/bin/python', args: ['-u', '-m', 'pkg.train'], env: {}, preload: ['torch', 'torch.distributed'] });
    spec.spec.entrypoint = { command: 'python3', args: ['train.py'], preload: [] };
    const empty = parseJobSpec(spec, opts);
    expect(empty.ok && 'preload' in empty.spec.spec.entrypoint).toBe(false);
  });

  it('accepts JSON with a $schema key and drops the key', () => {
    const text = JSON.stringify({ $schema: '../deploy/schema/elasticjob.schema.json', ...minimal() }, null, '\t');
    const r = parseJobSpecText(text, opts);
    expect(r.ok && '$schema' in r.spec).toBe(false);
    expect(r.ok).toBe(true);
  });
});

type Change = (s: Record<string, any>) => void;
/** [what is wrong, the exact path reported, part of the message, how to break the minimal spec] */
const BAD_SPECS: [string, string, string, Change][] = [
  ['min > max', 'spec.nodes.min', 'must be ≤ spec.nodes.max (got 4 > 2)', (s) => (s.spec.nodes = { min: 4, max: 2 })],
  ['initial outside [min, max]', 'spec.nodes.initial', 'allowed 1..3', (s) => (s.spec.nodes = { min: 1, max: 3, initial: 5 })],
  ['max not a multiple of unit', 'spec.nodes.max', 'multiple of spec.nodes.unit', (s) => (s.spec.nodes = { min: 2, max: 5, unit: 2 })],
  ['min 0', 'spec.nodes.min', '≥ 1', (s) => (s.spec.nodes = { min: 0 })],
  ['unknown backend', 'spec.backend', 'one of "local", "kubernetes", "ray" (got "slurm")', (s) => (s.spec.backend = 'slurm')],
  ['negative cpu', 'spec.resources.cpu', 'got -2', (s) => (s.spec.resources = { cpu: -2 })],
  ['bad memory quantity', 'spec.resources.memory', 'write G (10^9) or Gi (2^30)', (s) => (s.spec.resources = { memory: '2GB' })],
  ['memory as a bare small number', 'spec.resources.memory', 'a bare number means bytes', (s) => (s.spec.resources = { memory: 2 })],
  ['negative gpu', 'spec.resources.gpu', '≥ 0', (s) => (s.spec.resources = { gpu: -1 })],
  ['bad duration string', 'spec.faultTolerance.hangTimeout', 'not a duration (got "5 minutes"); write 500ms, 30s, 5m, 1h or 1h30m', (s) => (s.spec.faultTolerance = { hangTimeout: '5 minutes' })],
  ['negative duration number', 'spec.rendezvous.joinTimeout', 'give a unit: 500ms, 30s, 5m', (s) => (s.spec.rendezvous = { joinTimeout: -5 })],
  ['zero duration', 'spec.rendezvous.lastCallTimeout', 'at least 1ms', (s) => (s.spec.rendezvous = { lastCallTimeout: '0s' })],
  ['duration of the wrong type', 'spec.faultTolerance.heartbeatInterval', '(got true)', (s) => (s.spec.faultTolerance = { heartbeatInterval: true })],
  ['heartbeatTimeout ≤ heartbeatInterval', 'spec.faultTolerance.heartbeatTimeout', 'got 10s ≤ 10s', (s) => (s.spec.faultTolerance = { heartbeatInterval: '10s', heartbeatTimeout: '10s' })],
  ['missing entrypoint', 'spec.entrypoint', 'is required', (s) => delete s.spec.entrypoint],
  ['empty command', 'spec.entrypoint.command', 'must not be empty', (s) => (s.spec.entrypoint.command = '')],
  ['command with its arguments', 'spec.entrypoint.command', 'put its arguments in spec.entrypoint.args', (s) => (s.spec.entrypoint.command = 'python3 train.py')],
  ['args not a list', 'spec.entrypoint.args', 'must be a list', (s) => (s.spec.entrypoint.args = '--steps 30')],
  ['an arg that is a mapping', 'spec.entrypoint.args[1]', 'must be a string (got a mapping)', (s) => (s.spec.entrypoint.args = ['a', { b: 1 }])],
  ['env overriding a torchrun variable', 'spec.entrypoint.env.RANK', 'set by Rover', (s) => (s.spec.entrypoint.env = { RANK: '0' })],
  ['preload that is not a module name', 'spec.entrypoint.preload[0]', 'must be a Python module name', (s) => (s.spec.entrypoint.preload = ['torch distributed'])],
  ['preload for a shell entrypoint', 'spec.entrypoint.preload', 'needs a Python entrypoint', (s) => Object.assign(s.spec.entrypoint, { command: 'sh', args: ['-c', 'python3 train.py'], preload: ['torch'] })],
  ['preload for python -c', 'spec.entrypoint.preload', 'needs a Python entrypoint', (s) => Object.assign(s.spec.entrypoint, { command: ['python3', '-c'], args: ['print(1)'], preload: ['torch'] })],
  ['unknown top-level key', 'status', 'unknown field; allowed here: $schema, apiVersion, kind, metadata, spec', (s) => (s.status = {})],
  ['unknown key in spec', 'spec.nodez', 'did you mean "nodes"?', (s) => (s.spec.nodez = { min: 1 })],
  ['unknown nested key', 'spec.faultTolerance.maxRestarts', 'allowed here: maxProcessRestarts', (s) => (s.spec.faultTolerance = { maxRestarts: 1 })],
  ['unknown key in a list item', 'spec.kubernetes.tolerations[0].operater', 'did you mean "operator"?', (s) => Object.assign(s.spec, { backend: 'kubernetes', kubernetes: { image: 'i', tolerations: [{ key: 'a', operater: 'Exists' }] } })],
  ['string where a whole number belongs', 'spec.nprocPerNode', 'must be a whole number (got "four")', (s) => (s.spec.nprocPerNode = 'four')],
  ['fractional nprocPerNode', 'spec.nprocPerNode', 'must be a whole number (got 1.5)', (s) => (s.spec.nprocPerNode = 1.5)],
  ['name with capitals', 'metadata.name', 'DNS-1123', (s) => (s.metadata.name = 'My_Job')],
  ['name over 53 characters', 'metadata.name', 'at most 53 characters', (s) => (s.metadata.name = 'a'.repeat(54))],
  ['missing name', 'metadata.name', 'is required', (s) => delete s.metadata.name],
  ['wrong apiVersion', 'apiVersion', 'must be "rover.dev/v1"', (s) => (s.apiVersion = 'rover.dev/v2')],
  ['shardSize > size', 'spec.dataset.shardSize', 'got 200 > 100', (s) => (s.spec.dataset = { size: 100, shardSize: 200 })],
  ['negative dataset size', 'spec.dataset.size', '≥ 1 (got -5)', (s) => (s.spec.dataset = { size: -5, shardSize: 1 })],
  ['epochs 0', 'spec.dataset.epochs', '≥ 1 (got 0)', (s) => (s.spec.dataset = { size: 10, shardSize: 1, epochs: 0 })],
  ['maxSteps 0', 'spec.maxSteps', '≥ 1 (got 0)', (s) => (s.spec.maxSteps = 0)],
  ['fractional maxSteps', 'spec.maxSteps', 'must be a whole number (got 2.5)', (s) => (s.spec.maxSteps = 2.5)],
  ['maxSteps as text', 'spec.maxSteps', 'must be a whole number (got "10k")', (s) => (s.spec.maxSteps = '10k')],
  ['kubernetes without image', 'spec.kubernetes.image', 'needs a container image', (s) => (s.spec.backend = 'kubernetes')],
  ['bad toleration effect', 'spec.kubernetes.tolerations[0].effect', 'one of', (s) => (s.spec.kubernetes = { image: 'i', tolerations: [{ effect: 'Never' }] })],
  ['ray address not a URL', 'spec.ray.address', 'dashboard URL', (s) => (s.spec.ray = { address: 'localhost' })],
  ['keep 0', 'spec.checkpoint.keep', '≥ 1 (got 0)', (s) => (s.spec.checkpoint = { keep: 0 })],
  ['flash not a boolean', 'spec.checkpoint.flash', 'must be true or false (got "yes")', (s) => (s.spec.checkpoint = { flash: 'yes' })],
  ['label value not a string', 'metadata.labels.team', 'must be a string', (s) => (s.metadata.labels = { team: { a: 1 } })],
  ['label key with a prefix and a bad value', 'metadata.labels["example.com/team"]', 'label values', (s) => (s.metadata.labels = { 'example.com/team': 'ml platform' })],
  ['spec not a mapping', 'spec', 'must be a mapping of fields (got 5)', (s) => (s.spec = 5)],
];

describe('step target', () => {
  it('spec.maxSteps is optional and kept as the whole number written', () => {
    const input = minimal();
    const without = parseJobSpec(input, opts);
    expect(without.ok && without.spec.spec.maxSteps).toBeUndefined();
    input.spec.maxSteps = 5000;
    expect(parseJobSpec(input, opts)).toMatchObject({ ok: true, spec: { spec: { maxSteps: 5000 } } });
  });
});

describe('bad specs', () => {
  it('has at least 20 distinct cases', () => {
    expect(new Set(BAD_SPECS.map(([, p]) => p)).size).toBeGreaterThanOrEqual(20);
  });

  it.each(BAD_SPECS)('%s → %s', (_, expectedPath, expectedMessage, change) => {
    const input = minimal();
    change(input);
    const errors = errorsOf(input);
    const hit = errors.find((e) => e.path === expectedPath);
    expect(hit, `errors were: ${JSON.stringify(errors)}`).toBeDefined();
    expect(hit!.message).toContain(expectedMessage);
    expect(formatSpecErrors(errors, 'job.yaml')).toContain(`job.yaml: ${expectedPath}: ${hit!.message}`);
  });

  it('reports every problem in one pass, one error per unknown key', () => {
    const input = minimal();
    input.spec.nodes = { min: 3, max: 2 };
    input.spec.resources = { cpu: 0, memery: '1Gi', gpus: 1 };
    input.metadata.name = 'Bad';
    expect(errorsOf(input).map((e) => e.path).sort()).toEqual(
      ['metadata.name', 'spec.nodes.min', 'spec.resources.cpu', 'spec.resources.gpus', 'spec.resources.memery'].sort(),
    );
  });
});

describe('YAML and files', () => {
  it('points each error at its line and column, in file order', () => {
    const text = ['metadata:', '  name: job', 'spec:', '  nodes: {min: 4, max: 2}', '  entrypoint:', '    command: ""', '  bogus: 1', ''].join('\n');
    const r = parseJobSpecText(text, opts);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(formatSpecErrors(r.errors, 'job.yaml').split('\n')).toEqual([
      'job.yaml:4:11: spec.nodes.min: must be ≤ spec.nodes.max (got 4 > 2)',
      'job.yaml:6:5: spec.entrypoint.command: must not be empty: it is the program each process runs, e.g. python3',
      expect.stringMatching(/^job\.yaml:7:3: spec\.bogus: unknown field; allowed here: backend, /),
    ]);
  });

  it('reports a YAML syntax error with its line and column', () => {
    const r = parseJobSpecText('metadata:\n  name: job\nspec: [1, 2\n', opts);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors[0]).toMatchObject({ path: '', line: expect.any(Number), column: expect.any(Number) });
    expect(r.errors[0]!.message).toMatch(/^YAML syntax error: /);
    expect(formatSpecErrors(r.errors, 'job.yaml')).toMatch(/^job\.yaml:\d+:\d+: YAML syntax error: /);
  });

  it('rejects duplicate keys and empty files', () => {
    const dup = parseJobSpecText('metadata: {name: a}\nmetadata: {name: b}\n', opts);
    expect(!dup.ok && dup.errors[0]).toMatchObject({ line: 2, message: expect.stringContaining('unique') });
    const empty = parseJobSpecText('# nothing\n', opts);
    expect(!empty.ok && empty.errors[0]!.message).toContain('the spec is empty');
  });

  it('reports a missing file as an error instead of throwing', async () => {
    const r = await loadJobSpecFile('does-not-exist.yaml', { cwd: os.tmpdir() });
    expect(!r.ok && r.errors[0]!.message).toMatch(/^cannot read the file: .*ENOENT/);
  });

  it('loads a JSON file like a YAML one', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rover-spec-'));
    const file = path.join(dir, 'job.json');
    await writeFile(file, JSON.stringify(minimal()));
    const r = await loadJobSpecFile(file, opts);
    expect(r.ok && r.spec.metadata.name).toBe('job');
  });
});
