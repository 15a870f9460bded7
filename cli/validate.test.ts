// `rover validate` driven in-process through commander with captured output.
// (bin/rover.js as a real process is covered by the CLI's end-to-end tests.)
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EXIT_INVALID_SPEC, registerValidateCommand } from './validate.ts';

const DEMO = fileURLToPath(new URL('../examples/demo.yaml', import.meta.url));

async function runValidate(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const program = new Command('rover').exitOverride().configureOutput({
    writeOut: (s) => out.push(s),
    writeErr: (s) => err.push(s),
  });
  registerValidateCommand(program);
  await program.parseAsync(['validate', ...args], { from: 'user' });
  const exitCode = process.exitCode;
  process.exitCode = undefined;
  return { stdout: out.join(''), stderr: err.join(''), exitCode };
}

/** Writes `text` to job.yaml in a fresh folder and returns its path. */
async function specFile(text: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rover-validate-'));
  const file = path.join(dir, 'job.yaml');
  await writeFile(file, text);
  return file;
}

afterEach(() => {
  process.exitCode = undefined;
});

describe('rover validate', () => {
  it('prints the resolved demo spec as YAML and exits 0', async () => {
    const { stdout, stderr, exitCode } = await runValidate(DEMO);
    expect(exitCode).toBeUndefined();
    expect(stderr).toBe('');
    const spec = parse(stdout);
    expect(spec.metadata.name).toBe('demo');
    expect(spec.spec.entrypoint.workdir).toBe(path.dirname(DEMO));
    expect(spec.spec.nodes).toEqual({ min: 2, max: 2, initial: 2, unit: 1 });
    expect(spec.spec.faultTolerance.heartbeatTimeout).toBe(30_000);
    expect(spec.spec.resources.memory).toBe(2 ** 31);
  });

  it('prints JSON with --json', async () => {
    const { stdout, exitCode } = await runValidate(DEMO, '--json');
    expect(exitCode).toBeUndefined();
    expect(JSON.parse(stdout).spec.nprocPerNode).toBe(2);
  });

  it('prints every error with file position and field path on stderr and exits 2', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rover-validate-'));
    const file = path.join(dir, 'job.yaml');
    await writeFile(file, ['metadata:', '  name: Bad_Name', 'spec:', '  nodes: {min: 4, max: 2}', '  entrypoint: {}', ''].join('\n'));
    const { stdout, stderr, exitCode } = await runValidate(file);
    expect(exitCode).toBe(EXIT_INVALID_SPEC);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toEqual([
      expect.stringContaining(`${file}:2:3: metadata.name: must be a DNS-1123 label`),
      `${file}:4:11: spec.nodes.min: must be ≤ spec.nodes.max (got 4 > 2)`,
      `${file}:5:3: spec.entrypoint.command: is required: the program each process runs, e.g. python3 or [python3, train.py]`,
      `${file}: 3 errors (field reference: docs/spec-reference.md)`,
    ]);
  });

  it('reports a spec without a spec section as a field error, not a crash, and exits 2', async () => {
    const file = await specFile('metadata: {name: a}\n');
    const { stdout, stderr, exitCode } = await runValidate(file);
    expect(exitCode).toBe(EXIT_INVALID_SPEC);
    expect(stdout).toBe('');
    expect(stderr.trimEnd().split('\n')).toEqual([
      `${file}:1:1: spec: is required: the job itself, at least spec.entrypoint.command (see examples/demo.yaml)`,
      `${file}: 1 error (field reference: docs/spec-reference.md)`,
    ]);
  });

  it('refuses a bare-number duration and a path climbing out with "..", exit 2', async () => {
    const file = await specFile(
      ['metadata: {name: a}', 'spec:', '  entrypoint: {command: python3}', '  rendezvous: {lastCallTimeout: 10}', '  checkpoint: {dir: ../../../etc/passwd}', ''].join('\n'),
    );
    const { stderr, exitCode } = await runValidate(file);
    expect(exitCode).toBe(EXIT_INVALID_SPEC);
    expect(stderr).toContain(`${file}:4:16: spec.rendezvous.lastCallTimeout: give a unit: 10s, 10ms, 5m, 1h30m`);
    expect(stderr).toContain(`${file}:5:16: spec.checkpoint.dir: must not contain ".." (got "../../../etc/passwd")`);
  });

  it("shows the workdir resolved against the spec file's folder in --json, not the current directory", async () => {
    const file = await specFile('metadata: {name: a}\nspec:\n  entrypoint: {command: [python3, train.py], workdir: src}\n');
    const { stdout, exitCode } = await runValidate(file, '--json');
    expect(exitCode).toBeUndefined();
    const { entrypoint } = JSON.parse(stdout).spec;
    expect(entrypoint).toEqual({ command: 'python3', args: ['train.py'], env: {}, workdir: path.join(path.dirname(file), 'src') });
    expect(process.cwd()).not.toBe(path.dirname(file));
  });

  it('warns on stderr when the script is missing, still prints the spec and exits 0', async () => {
    const file = await specFile('metadata: {name: a}\nspec:\n  entrypoint: {command: python3, args: [train.py]}\n');
    const { stdout, stderr, exitCode } = await runValidate(file);
    expect(exitCode).toBeUndefined();
    expect(parse(stdout).spec.entrypoint.workdir).toBe(path.dirname(file));
    expect(stderr).toBe(
      `${file}: warning: spec.entrypoint: script "train.py" not found in ${path.dirname(file)}, where the processes start (spec.entrypoint.workdir; default: the spec file's folder)\n`,
    );
  });

  it('reports a missing file as an invalid spec', async () => {
    const { stderr, exitCode } = await runValidate(path.join(os.tmpdir(), 'no-such-rover-spec.yaml'));
    expect(exitCode).toBe(EXIT_INVALID_SPEC);
    expect(stderr).toContain('cannot read the file');
  });
});
