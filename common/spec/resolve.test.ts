// "A relative path means what the user thinks": a spec file's relative paths resolve against
// the file's folder, wherever `rover validate` / `rover submit` run from, and a missing
// entrypoint script is a warning.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatSpecWarnings, loadJobSpecFile, type JobSpecFileResult } from './index.ts';
import { entrypointScript } from './resolve.ts';

const env = { USER: 'ada' };

/** A project folder with the spec at `jobs/job.yaml` and the given files; returns its paths. */
async function project(spec: string, files: string[] = []) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'rover-resolve-'));
  const jobs = path.join(root, 'jobs');
  await mkdir(jobs);
  for (const file of files) {
    await mkdir(path.dirname(path.join(jobs, file)), { recursive: true });
    await writeFile(path.join(jobs, file), '');
  }
  const file = path.join(jobs, 'job.yaml');
  await writeFile(file, `metadata: {name: job}\nspec:\n${spec}`);
  return { root, jobs, file };
}

function loaded(result: JobSpecFileResult) {
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result;
}

describe('relative paths in a spec file', () => {
  it("default the workdir to the spec file's folder, whatever the current directory", async () => {
    const { jobs, file } = await project('  entrypoint: {command: [python3, train.py]}\n', ['train.py']);
    const r = loaded(await loadJobSpecFile(path.relative(os.tmpdir(), file), { cwd: os.tmpdir(), env }));
    expect(r.spec.spec.entrypoint.workdir).toBe(jobs);
    expect(r.spec.spec.checkpoint.dir).toBe(path.join(jobs, '.rover', 'checkpoints', 'job'));
    expect(r.warnings).toEqual([]);
  });

  it("resolve workdir and checkpoint.dir against the spec file's folder", async () => {
    const { jobs, file } = await project('  entrypoint: {command: python3, args: [train.py], workdir: src}\n  checkpoint: {dir: out/ckpt}\n', ['src/train.py']);
    const r = loaded(await loadJobSpecFile(file, { cwd: '/', env }));
    expect(r.spec.spec.entrypoint.workdir).toBe(path.join(jobs, 'src'));
    expect(r.spec.spec.checkpoint.dir).toBe(path.join(jobs, 'out', 'ckpt'));
  });

  it('keep absolute paths as written', async () => {
    const { root, file } = await project(`  entrypoint: {command: python3, args: [train.py], workdir: ${JSON.stringify(path.join(os.tmpdir()))}}\n`);
    const r = loaded(await loadJobSpecFile(file, { cwd: root, env }));
    expect(r.spec.spec.entrypoint.workdir).toBe(os.tmpdir());
  });

  it('stay as written for kubernetes, where they are paths inside the container', async () => {
    const { file } = await project('  backend: kubernetes\n  kubernetes: {image: python:3.12}\n  entrypoint: {command: python3, args: [train.py], workdir: app}\n');
    const r = loaded(await loadJobSpecFile(file, { env }));
    expect(r.spec.spec.entrypoint.workdir).toBe('app');
    expect(r.spec.spec.checkpoint.dir).toBe('.rover/checkpoints/job');
    expect(r.warnings).toEqual([]);
  });
});

describe('relative paths on ray', () => {
  it("resolve against the spec file's folder, which the Ray cluster's processes see (its default workdir too)", async () => {
    const { jobs, file } = await project('  backend: ray\n  entrypoint: {command: python3, args: [train.py]}\n', ['train.py']);
    const r = loaded(await loadJobSpecFile(file, { cwd: '/', env }));
    expect(r.spec.spec.entrypoint.workdir).toBe(jobs);
    expect(r.spec.spec.checkpoint.dir).toBe(path.join(jobs, '.rover', 'checkpoints', 'job'));
    expect(r.warnings).toEqual([]);
  });

  it("stay as written when the job ships its code as Ray's working_dir (then they are inside it)", async () => {
    const { file } = await project('  backend: ray\n  ray: {runtimeEnv: {working_dir: "s3://bucket/code.zip"}}\n  entrypoint: {command: python3, args: [train.py], workdir: src}\n');
    const r = loaded(await loadJobSpecFile(file, { env }));
    expect(r.spec.spec.entrypoint.workdir).toBe('src');
    expect(r.warnings).toEqual([]);
  });

  it('examples/ray.yaml runs as shipped: its script is in the folder its processes start in', async () => {
    const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
    const r = loaded(await loadJobSpecFile(path.join(examples, 'ray.yaml'), { cwd: '/', env }));
    expect(r.spec.spec.entrypoint.workdir).toBe(path.resolve(examples));
    expect(r.spec.spec.entrypoint.args[0]).toBe('trainer.py');
    expect(r.warnings).toEqual([]);
  });
});

describe('warnings about missing files', () => {
  it('warn, without failing, when the script is not in the workdir', async () => {
    const { jobs, file } = await project('  entrypoint: {command: python3, args: [-u, examples/train.py, --steps, 3]}\n');
    const r = loaded(await loadJobSpecFile(file, { env }));
    expect(r.warnings).toEqual([
      {
        path: 'spec.entrypoint',
        message: `script "examples/train.py" not found in ${jobs}, where the processes start (spec.entrypoint.workdir; default: the spec file's folder)`,
      },
    ]);
    expect(formatSpecWarnings(r.warnings, 'job.yaml')).toMatch(/^job\.yaml: warning: spec\.entrypoint: script "examples\/train\.py" not found in /);
  });

  it('warn when the workdir itself is missing', async () => {
    const { jobs, file } = await project('  entrypoint: {command: python3, args: [train.py], workdir: nowhere}\n');
    const r = loaded(await loadJobSpecFile(file, { env }));
    expect(r.warnings).toEqual([
      { path: 'spec.entrypoint.workdir', message: `${path.join(jobs, 'nowhere')} is not a directory on this machine (relative workdirs resolve against the spec file's folder)` },
    ]);
  });

  it('check a script given as a path in the command', async () => {
    const { file } = await project('  entrypoint: {command: ./run.sh}\n');
    const r = loaded(await loadJobSpecFile(file, { env }));
    expect(r.warnings.map((w) => w.message)).toEqual([expect.stringMatching(/^script "\.\/run\.sh" not found in /)]);
  });

  it('say nothing when the script is there or when a module runs', async () => {
    for (const spec of ['  entrypoint: {command: [bash, scripts/run.sh]}\n', '  entrypoint: {command: [python3, -m, pkg.train, x.py]}\n']) {
      const { file } = await project(spec, ['scripts/run.sh']);
      expect(loaded(await loadJobSpecFile(file, { env })).warnings).toEqual([]);
    }
  });
});

describe('entrypointScript', () => {
  it.each([
    [{ command: 'python3', args: ['train.py'] }, 'train.py'],
    [{ command: 'python3', args: ['-u', 'train.py', '--config', 'c.py'] }, 'train.py'],
    [{ command: 'bash', args: ['run.sh'] }, 'run.sh'],
    [{ command: './train.py', args: [] }, './train.py'],
    [{ command: 'train.sh', args: [] }, undefined],
    [{ command: 'python3', args: ['-m', 'pkg.train'] }, undefined],
    [{ command: 'python3', args: ['-c', 'print(1)', 'x.py'] }, undefined],
    [{ command: 'torchrun', args: ['--nproc-per-node=2', 'train.py'] }, 'train.py'],
  ])('%j → %s', (entrypoint, script) => {
    expect(entrypointScript(entrypoint)).toBe(script);
  });
});
