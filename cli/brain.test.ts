// What `rover brain status` and `rover status` print about the Brain.
import { describe, expect, it } from 'vitest';
import type { JobStatus } from '../workflows/job/messages.ts';
import { formatBrainStatus } from './brain.ts';
import { formatJobStatus } from './format.ts';

describe('rover brain status', () => {
  it('shows each source with its served version and last error, "-" for what is unknown', () => {
    const text = formatBrainStatus([
      { source: 'default', status: { source: 'default', intervalMs: 1000, version: 3, configs: 2, syncs: 10, failures: 1, lastError: 'team.yaml[0].include.usr: Unrecognized key', lastErrorAt: 1, lastSyncAt: Date.UTC(2026, 10, 25, 14, 0, 0), lastChangeAt: 1, runs: 1 } },
      { source: 'db', error: 'no sync workflow answering' },
    ]);
    expect(text.split('\n')).toEqual([
      'SOURCE   VERSION  CONFIGS  SYNCS  LAST SYNC             ERROR',
      'default  3        2        10     2026-11-25 14:00:00Z  team.yaml[0].include.usr: Unrecognized key',
      'db       -        -        -      -                     no sync workflow answering',
    ]);
  });
});

describe('rover status with Brain plans', () => {
  it('lists each plan with its rule, effect and reason', () => {
    const status: JobStatus = {
      jobId: 'demo', workflowId: 'job-demo', phase: 'RUNNING', round: 1, worldSize: 1, targetNodes: 1, nodes: [], nodeRelaunches: 1, processRestarts: 0,
      reason: null, warnings: [], checkpointStep: 0, epochsDone: 0,
      plans: [{ stage: 'oom', rule: 'oom-factor', applied: 'node 0 incarnation 1: memory 1 → 2 bytes', reason: 'node 0 ran out of memory', at: 0 }],
    };
    expect(formatJobStatus(status)).toContain('plan oom (oom-factor): node 0 incarnation 1: memory 1 → 2 bytes — node 0 ran out of memory');
  });
});
