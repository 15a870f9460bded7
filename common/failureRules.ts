// Failure classification: an ordered rule table from what a failed process left behind (exit
// code, signal, OOM kill, stderr tail) to what the job master does about it. Pure and
// deterministic, so the job workflow can run it. The spec's rules come before the defaults.

/** What a failure means for the job. */
export const FAILURE_CLASSES = [
  'transient', // restart the node's processes in place (the agent's restart budget)
  'nodeFault', // the machine is bad: relaunch the node as a new incarnation
  'userError', // a bug in the training code: repeating at the same step fails the job fast
] as const;
export type FailureClass = (typeof FAILURE_CLASSES)[number];

/** One rule; every field given must match. */
export interface FailureRule {
  /** Shown in events and reasons. */
  name?: string | undefined;
  exitCodes?: number[] | undefined;
  /** Signal names, e.g. SIGKILL. */
  signals?: string[] | undefined;
  oomKilled?: boolean | undefined;
  /** A regular expression searched in the stderr tail. */
  stderr?: string | undefined;
  /**
   * A regular expression searched in the exception line of the last Python traceback, or in the
   * whole stderr tail when there is none (a C++ abort). Narrower than `stderr`: a log line about
   * a retried connection above a real `ValueError` must not make the failure transient.
   */
  exception?: string | undefined;
  class: FailureClass;
}

export interface FailureFacts {
  exitCode: number | null;
  signal: string | null;
  oomKilled: boolean;
  stderrTail: string;
}

export interface Classification {
  class: FailureClass;
  /** Name of the rule that matched ('default' when none did). */
  rule: string;
  /** Last line of a Python traceback in the stderr tail, if there is one. */
  traceback: string | null;
}

const COMMUNICATION_ERRORS = [
  String.raw`ConnectionResetError|ConnectionRefusedError|ConnectionAbortedError|BrokenPipeError`,
  String.raw`Connection (reset|refused|closed|aborted)( by peer)?|Broken pipe|Socket Timeout`,
  String.raw`ncclSystemError|ncclRemoteError|ncclInternalError|NCCL (error|WARN).*(unhandled system error|remote process exited|network error)`,
  String.raw`Watchdog caught collective operation timeout|DistNetworkError|DistStoreError|RendezvousConnectionError|RendezvousTimeoutError`,
  String.raw`gloo::IoException|Timed out waiting .* for (recv|send)|\bTimeoutError\b`,
].join('|');

/** Rover's rules, after the spec's. Order matters: the first match wins. */
export const DEFAULT_FAILURE_RULES: FailureRule[] = [
  { name: 'oom-killed', oomKilled: true, class: 'nodeFault' },
  {
    name: 'gpu-hardware',
    stderr: String.raw`uncorrectable ECC error|GPU is lost|Xid \d+|CUDA error: (an illegal memory access|unspecified launch failure|misaligned address)|cudaErrorECCUncorrectable`,
    class: 'nodeFault',
  },
  { name: 'bus-error', signals: ['SIGBUS'], class: 'nodeFault' },
  { name: 'killed', signals: ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP'], class: 'transient' },
  { name: 'killed-exit-code', exitCodes: [137, 143], class: 'transient' },
  // A peer went away: the failure of another process shows up here as a lost connection, a
  // transport error or a timeout. Never the process's own bug (torch gloo/NCCL, c10d store, sockets).
  { name: 'communication', exception: COMMUNICATION_ERRORS, class: 'transient' },
  // The shell's "command not found" / "not executable" (POSIX exit statuses 127 / 126).
  { name: 'command-not-found', exitCodes: [126, 127], class: 'userError' },
  // python3 missing.py: "can't open file '…': [Errno 2] No such file or directory", exit 2.
  { name: 'script-not-found', exitCodes: [2], stderr: String.raw`can't open file|No such file or directory`, class: 'userError' },
  { name: 'cuda-out-of-memory', stderr: String.raw`CUDA out of memory|OutOfMemoryError`, class: 'userError' },
  { name: 'python-traceback', stderr: String.raw`Traceback \(most recent call last\):`, class: 'userError' },
];

const DEFAULT_CLASS: FailureClass = 'transient';

export function classifyFailure(facts: FailureFacts, specRules: readonly FailureRule[] = []): Classification {
  const traceback = tracebackLastLine(facts.stderrTail);
  const rules = [...specRules, ...DEFAULT_FAILURE_RULES];
  for (const [i, rule] of rules.entries()) {
    if (matches(rule, facts)) {
      const name = rule.name ?? (i < specRules.length ? `spec rule ${i + 1}` : `rule ${i + 1}`);
      return { class: rule.class, rule: name, traceback };
    }
  }
  return { class: DEFAULT_CLASS, rule: 'default', traceback };
}

function matches(rule: FailureRule, f: FailureFacts): boolean {
  if (rule.exitCodes && (f.exitCode === null || !rule.exitCodes.includes(f.exitCode))) return false;
  if (rule.signals && (f.signal === null || !rule.signals.includes(f.signal))) return false;
  if (rule.oomKilled !== undefined && rule.oomKilled !== f.oomKilled) return false;
  if (rule.stderr !== undefined && !safeRegExp(rule.stderr)?.test(f.stderrTail)) return false;
  if (rule.exception !== undefined && !safeRegExp(rule.exception)?.test(tracebackLastLine(f.stderrTail) ?? f.stderrTail)) return false;
  return [rule.exitCodes, rule.signals, rule.oomKilled, rule.stderr, rule.exception].some((field) => field !== undefined);
}

function safeRegExp(pattern: string): RegExp | undefined {
  try {
    return new RegExp(pattern, 'm');
  } catch {
    return undefined; // the spec schema rejects bad patterns; a stored old spec must not crash the master
  }
}

const TRACEBACK_START = 'Traceback (most recent call last):';

/**
 * The exception line of the last Python traceback in `tail` ("ValueError: bad shape"), or null.
 * Frames are indented; the first unindented line after them is the exception. With chained
 * exceptions the outermost traceback comes last, so the last traceback is the one read.
 */
export function tracebackLastLine(tail: string): string | null {
  const lines = tail.split('\n');
  let start = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i]!.includes(TRACEBACK_START)) {
      start = i;
      break;
    }
  }
  if (start < 0) return null;
  for (const line of lines.slice(start + 1)) {
    if (line.trim() !== '' && !/^\s/.test(line)) return line.trim();
  }
  return null;
}
