import { describe, expect, it } from 'vitest';
import type { JobStatus, NodeView } from '../workflows/job/messages.ts';
import { formatJobList, formatJobStatus, formatTable, formatTime } from './format.ts';

function node(over: Partial<NodeView> & { id: number }): NodeView {
  return { rank: null, incarnation: 0, status: 'pending', restarts: 0, pid: null, exitCode: null, reason: null, ...over };
}

function status(over: Partial<JobStatus> = {}): JobStatus {
  return {
    jobId: 'demo',
    workflowId: 'job-demo',
    phase: 'RUNNING',
    round: 2,
    worldSize: 4,
    targetNodes: 2,
    nodes: [],
    nodeRelaunches: 1,
    processRestarts: 3,
    reason: null,
    warnings: [],
    checkpointStep: 0,
    epochsDone: 0,
    ...over,
  };
}

describe('formatTable', () => {
  it('pads every column to its widest cell and trims line ends', () => {
    expect(formatTable(['A', 'LONG NAME', 'C'], [['xyz', 1, 'end'], ['q', 12345, '']])).toBe(
      ['A    LONG NAME  C', 'xyz  1          end', 'q    12345      -'].join('\n'),
    );
  });

  it('shows null and undefined cells as "-"', () => {
    expect(formatTable(['X', 'Y'], [[null, undefined]])).toBe('X  Y\n-  -');
  });
});

describe('formatTime', () => {
  it('prints UTC to the second and "-" for a missing date', () => {
    expect(formatTime(new Date('2025-11-25T13:47:02.123Z'))).toBe('2025-11-25 13:47:02Z');
    expect(formatTime(undefined)).toBe('-');
  });
});

describe('formatJobStatus', () => {
  it('prints the job header with aligned values, the step and its rate, and the nodes sorted by id', () => {
    const text = formatJobStatus(
      status({
        nodes: [
          node({ id: 1, rank: 1, incarnation: 2, status: 'running', restarts: 1, pid: 4242 }),
          node({ id: 0, rank: 0, status: 'running', pid: 4241 }),
        ],
      }),
      { step: 1200, stepsPerSecond: 12.345, maxSteps: null, fraction: null, etaSeconds: null, basis: null, shards: null },
    );
    expect(text).toBe(
      [
        'job:          demo',
        'workflow:     job-demo',
        'phase:        RUNNING',
        'round:        2',
        'world size:   4',
        'target nodes: 2',
        'relaunches:   1',
        'restarts:     3',
        'reason:       -',
        'checkpoint:   -',
        'epochs done:  0',
        'step:         1200',
        'steps/s:      12.3',
        '',
        'NODE  RANK  INCARNATION  STATUS   RESTARTS  PID   EXIT  REASON',
        '0     0     0            running  0         4241  -     -',
        '1     1     2            running  1         4242  -     -',
      ].join('\n'),
    );
  });

  it('shows the committed checkpoint and a shard table per epoch', () => {
    const counts = (o: Partial<{ total: number; done: number; inFlight: number; queued: number; poison: number; skipped: number }>) =>
      ({ total: 0, done: 0, inFlight: 0, queued: 0, poison: 0, skipped: 0, ...o });
    const shards = {
      ...counts({ total: 20, done: 14, inFlight: 2, queued: 3, skipped: 1 }),
      epochs: [{ epoch: 0, ...counts({ total: 10, done: 10 }) }, { epoch: 1, ...counts({ total: 10, done: 4, inFlight: 2, queued: 3, skipped: 1 }) }],
    };
    const text = formatJobStatus(status({ checkpointStep: 40, epochsDone: 1 }), { step: null, stepsPerSecond: null, maxSteps: null, fraction: 0.75, etaSeconds: 185, basis: 'dataset', shards });
    expect(text).toContain('checkpoint:   step 40\nepochs done:  1');
    expect(text).toContain('progress:     75.0%\nETA:          3m05s');
    expect(text).toContain(
      [
        'EPOCH  SHARDS  DONE  IN FLIGHT  QUEUED  POISON/SKIPPED',
        '0      10      10    0          0       0',
        '1      10      4     2          3       1',
        'all    20      14    2          3       1',
      ].join('\n'),
    );
  });

  it('says there are no nodes yet and lists warnings after the table', () => {
    const text = formatJobStatus(status({ phase: 'FAILED', reason: 'node 1 OOM', warnings: ['scale to 9 ignored: max is 4'] }));
    expect(text).toContain('phase:        FAILED');
    expect(text).toContain('reason:       node 1 OOM');
    expect(text.endsWith('no nodes yet\n\nwarning: scale to 9 ignored: max is 4')).toBe(true);
  });

  it('shows a failed node with its exit code and reason', () => {
    const text = formatJobStatus(status({ nodes: [node({ id: 3, status: 'failed', exitCode: 137, reason: 'OOM killed' })] }));
    expect(text.split('\n').at(-1)).toBe('3     -     0            failed  0         -    137   OOM killed');
  });

  it('shows why a launching node is pending in its reason column', () => {
    const pending = 'pod not scheduled (PodScheduled False): Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.';
    const text = formatJobStatus(status({ phase: 'RENDEZVOUS', nodes: [node({ id: 0, status: 'launching', pending })] }));
    expect(text.split('\n').at(-1)).toBe(`0     -     0            launching  0         -    -     pending: ${pending}`);
  });
});

describe('formatJobList', () => {
  it('prints one row per job with missing search attributes as "-"', () => {
    const text = formatJobList([
      {
        job: 'demo',
        workflowId: 'job-demo',
        state: 'RUNNING',
        worldSize: 8,
        user: 'ada',
        startTime: new Date('2025-01-02T03:04:05Z'),
        temporalStatus: 'RUNNING',
      },
      { job: 'old', workflowId: 'job-old', state: undefined, worldSize: undefined, user: undefined, startTime: undefined, temporalStatus: 'TERMINATED' },
    ]);
    expect(text).toBe(
      [
        'JOB   STATE    WORLD  USER  STARTED               TEMPORAL',
        'demo  RUNNING  8      ada   2025-01-02 03:04:05Z  RUNNING',
        'old   -        -      -     -                     TERMINATED',
      ].join('\n'),
    );
  });

  it('says so when there are no jobs', () => {
    expect(formatJobList([])).toBe('no jobs');
  });
});
