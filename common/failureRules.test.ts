// The failure rule table, and what the job master does with each class.
import { describe, expect, it } from 'vitest';
import type { EventDataInput, JobEvent } from './events.ts';
import { classifyFailure, tracebackLastLine, type FailureFacts, type FailureRule } from './failureRules.ts';
import { failureWeight, judgeFailure, type RoundFailure } from './failureCulprit.ts';
import { initialJobState, JobState } from './jobState.ts';
import { parseJobSpec } from './spec/index.ts';
import { roundClosedData, testEvent } from './eventFixtures.ts';

const facts = (o: Partial<FailureFacts> = {}): FailureFacts => ({ exitCode: 1, signal: null, oomKilled: false, stderrTail: '', ...o });

const TRACEBACK = [
  'loading batch 7',
  'Traceback (most recent call last):',
  '  File "train.py", line 10, in <module>',
  '    main()',
  '  File "train.py", line 8, in main',
  '    raise ValueError("bad shape (3, 4)")',
  'ValueError: bad shape (3, 4)',
].join('\n');

describe('classifyFailure', () => {
  const table: [string, FailureFacts, string, string][] = [
    ['OOM kill', facts({ exitCode: null, signal: 'SIGKILL', oomKilled: true }), 'nodeFault', 'oom-killed'],
    ['uncorrectable ECC', facts({ stderrTail: 'RuntimeError: CUDA error: uncorrectable ECC error encountered' }), 'nodeFault', 'gpu-hardware'],
    ['SIGBUS', facts({ exitCode: null, signal: 'SIGBUS' }), 'nodeFault', 'bus-error'],
    ['NCCL remote error', facts({ stderrTail: 'torch.distributed.DistBackendError: NCCL error: ncclRemoteError' }), 'transient', 'communication'],
    ['a peer reset the connection', facts({ stderrTail: TRACEBACK.replace('ValueError: bad shape (3, 4)', 'ConnectionResetError: [Errno 104] Connection reset by peer') }), 'transient', 'communication'],
    ['gloo lost its peer', facts({ stderrTail: TRACEBACK.replace('ValueError: bad shape (3, 4)', 'RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:4203') }), 'transient', 'communication'],
    ['c10d store gone', facts({ stderrTail: TRACEBACK.replace('ValueError: bad shape (3, 4)', 'torch.distributed.DistNetworkError: failed to recv, got 0 bytes') }), 'transient', 'communication'],
    ['gloo abort without a traceback', facts({ exitCode: null, signal: 'SIGABRT', stderrTail: "terminate called after throwing an instance of 'gloo::IoException'\n  what():  Connection reset by peer" }), 'transient', 'communication'],
    ['a real bug below a retried connection', facts({ stderrTail: `retrying: Connection refused\n${TRACEBACK}` }), 'userError', 'python-traceback'],
    ['script not found', facts({ exitCode: 2, stderrTail: "python3: can't open file '/jobs/train.py': [Errno 2] No such file or directory" }), 'userError', 'script-not-found'],
    ['command not found', facts({ exitCode: 127, stderrTail: 'sh: 1: trian.sh: not found' }), 'userError', 'command-not-found'],
    ['not executable', facts({ exitCode: 126, stderrTail: 'sh: 1: ./train.sh: Permission denied' }), 'userError', 'command-not-found'],
    ['SIGKILL', facts({ exitCode: null, signal: 'SIGKILL' }), 'transient', 'killed'],
    ['exit 137', facts({ exitCode: 137 }), 'transient', 'killed-exit-code'],
    ['CUDA OOM', facts({ stderrTail: 'torch.cuda.OutOfMemoryError: CUDA out of memory.' }), 'userError', 'cuda-out-of-memory'],
    ['Python traceback', facts({ stderrTail: TRACEBACK }), 'userError', 'python-traceback'],
    ['plain exit 1', facts({ stderrTail: 'lost rank 0' }), 'transient', 'default'],
  ];
  it.each(table)('%s → %s', (_name, f, cls, rule) => {
    const c = classifyFailure(f);
    expect([c.class, c.rule]).toEqual([cls, rule]);
  });

  it('tries the spec rules first, and every field of a rule must match', () => {
    const rules: FailureRule[] = [
      { name: 'flaky-reader', stderr: 'DataLoader worker \\(pid \\d+\\) is killed', class: 'transient' },
      { exitCodes: [3], signals: ['SIGTERM'], class: 'nodeFault' },
    ];
    const flaky = facts({ stderrTail: `${TRACEBACK}\nRuntimeError: DataLoader worker (pid 42) is killed` });
    expect(classifyFailure(flaky, rules)).toMatchObject({ class: 'transient', rule: 'flaky-reader' });
    expect(classifyFailure(facts({ exitCode: 3 }), rules).rule).toBe('default');
    expect(classifyFailure(facts({ exitCode: 3, signal: 'SIGTERM' }), rules)).toMatchObject({ class: 'nodeFault', rule: 'spec rule 2' });
  });
});

describe('tracebackLastLine', () => {
  it('reads the exception line of the last traceback', () => {
    expect(tracebackLastLine(TRACEBACK)).toBe('ValueError: bad shape (3, 4)');
    const chained = `${TRACEBACK}\n\nDuring handling of the above exception, another exception occurred:\n\n${TRACEBACK.replaceAll('ValueError: bad shape (3, 4)', 'KeyError: 7')}`;
    expect(tracebackLastLine(chained)).toBe('KeyError: 7');
    expect(tracebackLastLine('exit 1 without a traceback')).toBeNull();
  });
});

describe('JobState applies the classification', () => {
  let id = 0;
  /** A process_failed event as the API writes it: classified, a culprit of round 1 unless `data` says otherwise. */
  const failed = (node: number, data: Partial<EventDataInput<'process_failed'>>): JobEvent => {
    const failure = classifyFailure(facts({ exitCode: null, ...data } as Partial<FailureFacts>));
    return testEvent({ id: ++id, kind: 'process_failed', nodeId: node, incarnation: 0, data: { round: 1, restarts: 0, role: 'culprit', failure, ...data }, at: 0 });
  };
  const training = () => {
    const state = new JobState(initialJobState(2), { minNodes: 1, maxNodes: 2, unit: 1, nprocPerNode: 1, maxNodeRelaunches: 2 });
    state.markLaunched([0, 1].map((n) => ({ id: n, incarnation: 0, pid: 10 + n })));
    state.applyEvents([testEvent({ id: ++id, kind: 'round_closed', nodeId: null, incarnation: null, at: 0, data: roundClosedData(1, [0, 1]) })]);
    return state;
  };

  it('fails fast when the same traceback repeats at the same step, naming its last line', () => {
    const state = training();
    expect(state.applyEvents([failed(0, { exitCode: 1, stderrTail: TRACEBACK, step: 7, restarts: 0 })])).toEqual([]);
    expect(state.data.phase).toBe('RUNNING');
    state.applyEvents([failed(0, { exitCode: 1, stderrTail: TRACEBACK, step: 9, restarts: 1 })]);
    expect(state.data.phase, 'another step is progress, not a repeat').toBe('RUNNING');
    state.applyEvents([failed(1, { exitCode: 1, stderrTail: TRACEBACK, step: 7, restarts: 0 })]);
    expect(state.data.phase).toBe('FAILED');
    expect(state.data.reason).toMatch(/^node 1 incarnation 0 failed with exit code 1: the same user error twice at step 7 \(rule python-traceback\), failing fast: ValueError: bad shape \(3, 4\)$/);
  });

  it('restarts a SIGKILLed process in place however often it happens', () => {
    const state = training();
    for (let i = 0; i < 3; i++) expect(state.applyEvents([failed(0, { exitCode: null, signal: 'SIGKILL', step: 7, restarts: i })])).toEqual([]);
    expect(state.data.phase).toBe('RUNNING');
    expect(state.data.processRestarts).toBe(3);
  });

  it('fails the job on a hang when spec.faultTolerance.hangAction is fail, and only warns otherwise', () => {
    const hang = (action: EventDataInput<'hang_suspected'>['action']): JobEvent =>
      testEvent({ id: ++id, kind: 'hang_suspected', nodeId: null, incarnation: null, at: 0, data: { since: 0, idleMs: 31_000, step: 12, round: 1, action } });
    const logged = training();
    logged.applyEvents([hang('restart')]);
    expect(logged.data.phase).toBe('RUNNING');
    expect(logged.data.warnings.at(-1)).toMatch(/no training progress for 31 s at step 12; action restart/);
    const failed = training();
    failed.applyEvents([hang('fail')]);
    expect(failed.data.phase).toBe('FAILED');
    expect(failed.data.reason).toMatch(/^hang: no training progress for 31 s at step 12/);
  });

  it('never counts a consequence of another node\'s failure, not even the same traceback twice', () => {
    const state = training();
    state.applyEvents([failed(0, { exitCode: 1, stderrTail: TRACEBACK, step: 7, round: 1, failures: 1 })]);
    const victim = { exitCode: 1, stderrTail: TRACEBACK, step: 7, round: 1, role: 'consequence' as const, consequenceOf: { node: 0, incarnation: 0 }, failures: 0 };
    expect(state.applyEvents([failed(1, victim)])).toEqual([]);
    expect(state.data.phase).toBe('RUNNING');
    expect(state.data.processRestarts).toBe(1);
    expect([state.node(0)?.restarts, state.node(1)?.restarts]).toEqual([1, 0]);
    expect(state.node(1)?.lastError).toBe("ValueError: bad shape (3, 4) (after node 0's failure)");
  });

  it('takes back a culprit that a stronger failure of the same round unseated', () => {
    const state = training();
    // Node 1's traceback arrived first; node 0's SIGKILL then explains it.
    state.applyEvents([failed(1, { exitCode: 1, stderrTail: TRACEBACK, step: 8, round: 3, failures: 1 })]);
    state.applyEvents([failed(0, { exitCode: null, signal: 'SIGKILL', step: 8, round: 3, failures: 1, supersedes: { node: 1, incarnation: 0 } })]);
    expect([state.node(0)?.restarts, state.node(1)?.restarts]).toEqual([1, 0]);
    expect(state.data.processRestarts).toBe(1);
    expect(state.data.userErrors).toEqual([]);
    state.applyEvents([failed(1, { exitCode: 1, stderrTail: TRACEBACK, step: 8, round: 4, failures: 1 })]);
    expect(state.data.phase, 'the taken-back traceback does not count as a first sighting').toBe('RUNNING');
  });

  it('gives a survivor its restart back when the peer it lost turns out lost itself', () => {
    const state = training();
    state.applyEvents([failed(0, { exitCode: 1, stderrTail: 'ConnectionResetError: [Errno 104] Connection reset by peer', step: 5, round: 1, failures: 1 })]);
    expect(state.node(0)?.restarts).toBe(1);
    const lost = testEvent({ id: ++id, kind: 'node_lost', nodeId: 1, incarnation: 0, at: 0, data: { reason: 'agent process 42 is gone', round: 1, role: 'culprit', supersedes: { node: 0, incarnation: 0 } } });
    expect(state.applyEvents([lost]).map((a) => a.type)).toEqual(['remove', 'openRound', 'launch']);
    expect(state.node(0)?.restarts).toBe(0);
    expect(state.data.processRestarts, 'the relaunch restarted that round, not a process failure').toBe(0);
    expect(state.node(0)?.lastError).toBe("ConnectionResetError: [Errno 104] Connection reset by peer (after node 1's failure)");
  });

  it('fails a crash loop: every process of a node failing alike before any step, twice in a row', () => {
    const state = training();
    const missing = { exitCode: 2, stderrTail: "python3: can't open file '/jobs/train.py': [Errno 2] No such file or directory", step: null, allProcessesAlike: true };
    state.applyEvents([failed(0, { ...missing, round: 1 })]);
    expect(state.data.phase).toBe('RUNNING');
    state.applyEvents([failed(1, { ...missing, round: 2 })]);
    expect(state.data.phase).toBe('FAILED');
    expect(state.data.reason).toBe(
      "node 1 incarnation 0 failed with exit code 2: every process of the node failed the same way before any step, twice in a row (rule script-not-found), failing fast: python3: can't open file '/jobs/train.py': [Errno 2] No such file or directory",
    );
  });

  it('does not call it a crash loop when a step was made or the processes failed differently', () => {
    const state = training();
    const crash = { exitCode: 1, stderrTail: 'lost rank 0', allProcessesAlike: true };
    state.applyEvents([failed(0, { ...crash, step: null }), failed(0, { ...crash, step: 3 }), failed(0, { ...crash, step: null })]);
    state.applyEvents([failed(0, { ...crash, step: null, allProcessesAlike: false })]);
    expect(state.data.phase).toBe('RUNNING');
  });

  it('relaunches the node on a node fault', () => {
    const state = training();
    const actions = state.applyEvents([failed(1, { exitCode: 1, stderrTail: 'CUDA error: uncorrectable ECC error encountered', restarts: 0 })]);
    expect(actions.map((a) => a.type)).toEqual(['remove', 'openRound', 'launch']);
    expect(state.node(1)?.incarnation).toBe(1);
    expect(state.data.nodeRelaunches).toBe(1);
  });
});

describe('the culprit, not the victims (judgeFailure)', () => {
  const at = (node: number, weight: number, ms: number, exitedAt: number | null = null): RoundFailure => ({ node, incarnation: 0, weight, at: ms, exitedAt });
  const weightOf = (f: Partial<FailureFacts>) => failureWeight(facts(f), classifyFailure(facts(f)));
  const killed = weightOf({ exitCode: null, signal: 'SIGKILL' });
  const wrappedKill = weightOf({ exitCode: 137 });
  const traceback = weightOf({ stderrTail: TRACEBACK });
  const reset = weightOf({ stderrTail: TRACEBACK.replace('ValueError: bad shape (3, 4)', 'ConnectionResetError: [Errno 104] Connection reset by peer') });

  it('ranks a kill over a traceback over a lost connection', () => {
    expect([killed, wrappedKill, traceback, reset]).toEqual([3, 3, 2, 1]);
    expect(weightOf({ exitCode: null, signal: 'SIGKILL', oomKilled: true })).toBe(3);
  });

  const table: [string, RoundFailure | null, RoundFailure, string][] = [
    ['first failure of the round', null, at(0, killed, 0), 'culprit'],
    ['victim reset after the kill', at(0, killed, 0), at(1, reset, 300), 'consequence of 0'],
    ['victim traceback after the kill', at(0, killed, 0), at(1, traceback, 300), 'consequence of 0'],
    ['kill reported after its victim', at(1, reset, 0), at(0, killed, 400), 'culprit over 1'],
    ['kill reported after a victim traceback', at(1, traceback, 0), at(0, killed, 400), 'culprit over 1'],
    ['traceback reported after a reset', at(1, reset, 0), at(0, traceback, 400), 'culprit over 1'],
    ['second kill in the window', at(0, killed, 0), at(1, killed, 400), 'consequence of 0'],
    ['same traceback on another node', at(0, traceback, 0), at(1, traceback, 100), 'consequence of 0'],
    ['a failure past the window', at(0, killed, 0), at(1, reset, 10_001), 'culprit'],
    ['equal weight: the earlier exit reported second', at(1, reset, 0, 1_000_050), at(0, reset, 200, 1_000_000), 'culprit over 1'],
    ['equal weight: the later exit reported second', at(0, reset, 0, 1_000_000), at(1, reset, 200, 1_000_050), 'consequence of 0'],
    ['equal weight, exit time unknown', at(1, reset, 0, null), at(0, reset, 200, 1_000_000), 'consequence of 1'],
  ];
  it.each(table)('%s → %s', (_name, culprit, failure, expected) => {
    const judged = judgeFailure(culprit, failure);
    const text = judged.role === 'consequence' ? `consequence of ${judged.of.node}` : judged.supersedes ? `culprit over ${judged.supersedes.node}` : 'culprit';
    expect(text).toBe(expected);
  });
});

describe('spec.faultTolerance.failureRules', () => {
  const parse = (failureRules: unknown) =>
    parseJobSpec({ metadata: { name: 'rules' }, spec: { entrypoint: { command: 'python3' }, faultTolerance: { failureRules } } });

  it('accepts rules and keeps their order', () => {
    const parsed = parse([{ name: 'a', stderr: 'boom', class: 'userError' }, { exitCodes: [3], class: 'nodeFault' }]);
    expect(parsed.ok && parsed.spec.spec.faultTolerance.failureRules.map((r) => r.class)).toEqual(['userError', 'nodeFault']);
  });

  it.each([
    ['a bad regular expression', [{ stderr: '(', class: 'transient' }], 'spec.faultTolerance.failureRules[0].stderr', 'valid regular expression'],
    ['an unknown class', [{ exitCodes: [1], class: 'retry' }], 'spec.faultTolerance.failureRules[0].class', 'transient'],
    ['a rule that matches nothing', [{ class: 'transient' }], 'spec.faultTolerance.failureRules[0]', 'at least one of'],
  ])('rejects %s, naming the field', (_name, rules, path, message) => {
    const parsed = parse(rules);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.errors).toContainEqual(expect.objectContaining({ path, message: expect.stringContaining(message) }));
  });
});
