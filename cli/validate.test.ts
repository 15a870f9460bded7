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
      `${file}:5:3: spec.entrypoint.command: is required`,
      `${file}: 3 errors (field reference: examples/README.md)`,
    ]);
  });

  it('reports a missing file as an invalid spec', async () => {
    const { stderr, exitCode } = await runValidate(path.join(os.tmpdir(), 'no-such-rover-spec.yaml'));
    expect(exitCode).toBe(EXIT_INVALID_SPEC);
    expect(stderr).toContain('cannot read the file');
  });
});
