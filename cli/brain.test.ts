// What `rover brain status` and `rover status` print about the Brain.
import { describe, expect, it } from 'vitest';
import type { JobStatus } from '../workflows/job/messages.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatBrainStatus, validateBrainConfigFile } from './brain.ts';
import { formatJobStatus } from './format.ts';

describe('rover brain status', () => {
  it('shows each source with its served version and last error, "-" for what is unknown', () => {
    const text = formatBrainStatus([
      { source: 'default', state: 'running', status: { source: 'default', intervalMs: 1000, version: 3, configs: 2, syncs: 10, failures: 1, lastError: 'team.yaml[0].include.usr: Unrecognized key', lastErrorAt: 1, lastSyncAt: Date.UTC(2026, 10, 25, 14, 0, 0), lastChangeAt: 1, runs: 1 } },
      { source: 'db', state: 'starting', error: 'no sync workflow yet' },
    ]);
    expect(text.split('\n')).toEqual([
      'SOURCE   STATE     VERSION  CONFIGS  SYNCS  LAST SYNC             ERROR',
      'default  running   3        2        10     2026-11-25 14:00:00Z  team.yaml[0].include.usr: Unrecognized key',
      'db       starting  -        -        -      -                     no sync workflow yet',
    ]);
  });
});

describe('rover status with Brain plans', () => {
  it('lists each plan with its rule, effect and reason', () => {
    const status: JobStatus = {
      jobId: 'demo', workflowId: 'job-demo', phase: 'RUNNING', round: 1, worldSize: 1, targetNodes: 1, nodes: [], nodeRelaunches: 1, processRestarts: 0,
      reason: null, warnings: [], checkpointStep: 0, epochsDone: 0,
      plans: [{ stage: 'oom', rule: 'oom-factor', applied: 'node 0 incarnation 1: memory 134217728 → 268435456 bytes', reason: 'node 0 ran out of memory at 134217728 bytes', at: 0 }],
    };
    expect(formatJobStatus(status)).toContain('plan oom (oom-factor): node 0 incarnation 1: memory 128 MiB → 256 MiB — node 0 ran out of memory at 128 MiB');
  });
});

describe('rover brain config validate', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rover-brain-validate-'));
  const file = (name: string, text: string) => {
    writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };

  it('accepts a valid file, naming each configuration', async () => {
    const f = file('ok.yaml', 'name: cv\ninclude: {labels: {team: cv}}\nconfigure: {optimizer: {oomFactor: 3}, queue: gpu}\n');
    expect(await validateBrainConfigFile(f)).toEqual({ ok: true, text: `${f}: configuration "cv" is valid` });
  });

  it('names the entry and field of an out-of-range setting, a duplicate name in both places, and bad YAML', async () => {
    const f = file('bad.yaml', 'configs:\n  - {name: a, configure: {optimizer: {efficiencyThreshold: 2, oomFactor: 3}}}\n  - {name: b, configure: {}}\n  - {name: b, configure: {}}\n');
    const report = await validateBrainConfigFile(f);
    expect(report.ok).toBe(false);
    expect(report.text).toContain(`${f}[0].configure.optimizer.efficiencyThreshold`);
    expect(report.text).toContain(`${f}[2]: configuration name "b" is already used in ${f}[1]`);
    expect(report.text).toContain(`${f}[1]: configuration "b" is valid`);
    const broken = await validateBrainConfigFile(file('broken.yaml', 'name: [x\n'));
    expect(broken.ok).toBe(false);
    expect(broken.text).toContain('invalid YAML');
  });
});
