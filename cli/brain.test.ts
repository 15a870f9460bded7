// What `rover brain status` and `rover status` print about the Brain.
import { describe, expect, it } from 'vitest';
import type { JobStatus } from '../workflows/job/messages.ts';
import { formatBrainStatus } from './brain.ts';
import { formatJobStatus } from './format.ts';

describe('rover brain status', () => {
  const status = { intervalMs: 1000, version: 3, configs: 2, syncs: 10, failures: 1, lastErrorAt: 1, lastSyncAt: Date.UTC(2026, 10, 25, 14, 0, 0), lastChangeAt: 1, runs: 1 };

  it('shows each source with its served version and last error, "-" for what is unknown', () => {
    const text = formatBrainStatus([
      { source: 'default', state: 'running', status: { ...status, source: 'default', lastError: '/etc/rover/brain: cannot read the directory: ENOENT', rejected: [] } },
      { source: 'db', state: 'starting', error: 'no sync workflow yet' },
    ]);
    expect(text.split('\n')).toEqual([
      'SOURCE   STATE     VERSION  CONFIGS  SYNCS  LAST SYNC             ERROR',
      'default  running   3        2        10     2026-11-25 14:00:00Z  /etc/rover/brain: cannot read the directory: ENOENT',
      'db       starting  -        -        -      -                     no sync workflow yet',
    ]);
  });

  it("lists each source's rejected entries under it, one problem a line", () => {
    const rejected = ['/etc/rover/brain/team-a.yaml: configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2)'];
    const text = formatBrainStatus([
      { source: 'default', state: 'running', status: { ...status, source: 'default', lastError: null, rejected } },
      { source: 'clean', state: 'running', status: { ...status, source: 'clean', lastError: null, rejected: [] } },
      { source: 'db', state: 'running', status: { ...status, source: 'db', lastError: null, rejected: ['row "a": include.usr: unknown field', 'row "b": configure: required'] } },
    ]);
    expect(text.split('\n')).toEqual([
      'SOURCE   STATE    VERSION  CONFIGS  SYNCS  LAST SYNC             ERROR',
      'default  running  3        2        10     2026-11-25 14:00:00Z  entries rejected (1 problem, below)',
      'clean    running  3        2        10     2026-11-25 14:00:00Z  -',
      'db       running  3        2        10     2026-11-25 14:00:00Z  entries rejected (2 problems, below)',
      '',
      'Rejected entries (not served; every other entry of their source is):',
      'default:',
      '  /etc/rover/brain/team-a.yaml: configure.optimizer.efficiencyThreshold: must be a number in (0, 1] (got 2)',
      'db:',
      '  row "a": include.usr: unknown field',
      '  row "b": configure: required',
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
