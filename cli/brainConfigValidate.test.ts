// `rover brain config validate` run as the real CLI process (bin/rover.js), on a file and on a
// folder: a short OK and exit 0, or one line per problem with place and field and exit 2.
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../common/repoRoot.ts';
import { EXIT_INVALID_SPEC } from './validate.ts';

async function rover(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [path.join(repoRoot, 'bin/rover.js'), ...args], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('rover brain config validate', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rover-brain-validate-'));
  const file = (name: string, text: string) => {
    writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };

  it('answers a valid file with a short OK naming its configurations, exit 0', async () => {
    const f = file('ok.yaml', 'configs:\n  - {name: cv, include: {labels: {team: cv}}, configure: {optimizer: {oomFactor: 3}, queue: gpu}}\n  - {name: nlp, configure: {}}\n');
    expect(await rover('brain', 'config', 'validate', f)).toEqual({ code: 0, stdout: `${f}: OK, 2 configurations (cv, nlp)\n`, stderr: '' });
  }, 150_000);

  it('lists each problem of a file with its entry and field, and the valid ones beside them, exit 2', async () => {
    const f = file('bad.yaml', 'configs:\n  - {name: a, configure: {optimizer: {efficiencyThreshold: 2, oomFactor: 3}}}\n  - {name: b, configure: {}}\n  - {name: b, configure: {}}\n');
    const result = await rover('brain', 'config', 'validate', f);
    expect(result.code).toBe(EXIT_INVALID_SPEC);
    expect(result.stdout).toBe('');
    expect(result.stderr.trimEnd().split('\n')).toEqual([
      `${f}[0] (configuration "a"): configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2)`,
      `${f}[2]: configuration name "b" is already used in ${f}[1]; names must be unique within a source (this one is ignored)`,
      `${f}: invalid: 2 problems; valid beside them: 1 configuration (b)`,
    ]);
  }, 150_000);

  it('checks a folder as the yaml source reads it: every file, bad YAML with its line, a duplicate naming both files', async () => {
    const folder = path.join(dir, 'configs');
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'team-a.yaml'), 'name: team-a\nconfigure: {optimizer: {efficiencyThreshold: 2}}\n');
    writeFileSync(path.join(folder, 'team-b.yaml'), 'name: team-b\nconfigure: {queue: gpu}\n');
    writeFileSync(path.join(folder, 'team-c.yml'), 'name: team-b\nconfigure: {queue: cpu}\n');
    writeFileSync(path.join(folder, 'typo.yaml'), 'name: [oops\n');
    writeFileSync(path.join(folder, 'notes.txt'), 'not a configuration');
    const result = await rover('brain', 'config', 'validate', folder);
    expect(result.code).toBe(EXIT_INVALID_SPEC);
    expect(result.stderr.trimEnd().split('\n')).toEqual([
      `${path.join(folder, 'team-a.yaml')}: configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2)`,
      `${path.join(folder, 'team-c.yml')}: configuration name "team-b" is already used in ${path.join(folder, 'team-b.yaml')}; names must be unique within a source (this one is ignored)`,
      expect.stringMatching(new RegExp(`^${path.join(folder, 'typo.yaml')}:2:1: invalid YAML: `)),
      `${folder}: invalid: 3 problems; valid beside them: 1 configuration (team-b)`,
    ]);
  }, 150_000);

  it('says so when the path cannot be read, exit 2', async () => {
    const missing = path.join(dir, 'no-such.yaml');
    const result = await rover('brain', 'config', 'validate', missing);
    expect(result.code).toBe(EXIT_INVALID_SPEC);
    expect(result.stderr).toContain(`${missing}: cannot read it: ENOENT`);
  }, 150_000);
});
