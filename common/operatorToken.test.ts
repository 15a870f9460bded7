import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { operatorTokenFile, withOperatorToken } from './operatorToken.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const homes: string[] = [];
const newHome = () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'rover-operator-'));
  homes.push(home);
  return home;
};
afterEach(() => {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
});

describe('the operator token', () => {
  it('is ROVER_OPERATOR_TOKEN when set, and no file is made', () => {
    const home = newHome();
    const config = withOperatorToken(loadConfig({ ROVER_HOME: home, ROVER_OPERATOR_TOKEN: 'set-by-the-operator-0123' }), { create: true });
    expect(config.operatorToken).toBe('set-by-the-operator-0123');
    expect(() => statSync(operatorTokenFile(home))).toThrow();
  });

  it('refuses a short ROVER_OPERATOR_TOKEN', () => {
    expect(() => loadConfig({ ROVER_OPERATOR_TOKEN: 'short' })).toThrow(/ROVER_OPERATOR_TOKEN: must be at least 16 characters/);
  });

  it('is made once into the home, private to its user, and read back by the CLI', () => {
    const home = newHome();
    expect(withOperatorToken(loadConfig({ ROVER_HOME: home }), { create: false }).operatorToken).toBeUndefined();
    const made = withOperatorToken(loadConfig({ ROVER_HOME: home }), { create: true }).operatorToken;
    expect(made).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(operatorTokenFile(home)).mode & 0o777).toBe(0o600);
    expect(withOperatorToken(loadConfig({ ROVER_HOME: home }), { create: true }).operatorToken).toBe(made);
    expect(withOperatorToken(loadConfig({ ROVER_HOME: home }), { create: false }).operatorToken).toBe(made);
  });

  it('is the same for processes that start at once', async () => {
    const home = newHome();
    const script = `
      const { loadConfig } = await import('./common/config.ts');
      const { withOperatorToken } = await import('./common/operatorToken.ts');
      process.stdout.write(withOperatorToken(loadConfig({ ROVER_HOME: process.argv[1] }), { create: true }).operatorToken ?? '');`;
    const run = () =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, home], { cwd: repoRoot }).then((r) => r.stdout);
    const tokens = await Promise.all([run(), run(), run(), run()]);
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).toHaveLength(43);
  });
});
