// A failure event (process_failed, node_failed, node_lost) as the job master reads it: written by
// the API or the worker, which classified it and judged it culprit or consequence where it was seen.
import type { JobEvent } from './events.ts';
import { tracebackLastLine, type Classification } from './failureRules.ts';

export interface NodeIncarnation {
  node: number;
  incarnation: number;
}

export interface FailureEvent {
  exitCode: number | null;
  signal: string | null;
  /** The node's latest step before the failure; null: before any step. */
  step: number | null;
  /** The round the failed group ran in (null in events written before rounds were reported). */
  round: number | null;
  failure: Classification;
  /** The round's culprit (charged to its node), or a consequence of another node's failure. */
  role: 'culprit' | 'consequence';
  consequenceOf: NodeIncarnation | null;
  /** An earlier culprit of the round this failure unseated (it was a consequence after all). */
  supersedes: NodeIncarnation | null;
  /** Failures charged to the node incarnation so far, by the API's count. */
  failures: number | null;
  allProcessesAlike: boolean;
  /** What a user reads first: the exception line, else the last stderr line, else the exit. */
  errorLine: string;
}

/** The kinds a failure is read from. */
export type FailureKindEvent = JobEvent<'process_failed' | 'node_failed' | 'node_lost'>;

/** What a failure without the API's classification (events written before it) counts as. */
const UNCLASSIFIED: Classification = { class: 'transient', rule: 'default', traceback: null };

/** Reads a failure event's data; fields missing from older events get neutral values. */
export function readFailureEvent(event: FailureKindEvent): FailureEvent {
  const d = event.data;
  const exitCode = d.exitCode ?? null;
  const signal = d.signal || null;
  const stderrTail = d.stderrTail ?? '';
  const lastLine = stderrTail.trimEnd().split('\n').at(-1)?.trim() || null;
  const exit = signal ? `killed by ${signal}` : `exit code ${exitCode ?? 'none'}`;
  const failure = event.kind === 'process_failed' ? event.data.failure : undefined;
  return {
    exitCode,
    signal,
    step: d.step ?? null,
    round: d.round ?? null,
    failure: failure ? { class: failure.class, rule: failure.rule || UNCLASSIFIED.rule, traceback: failure.traceback || null } : UNCLASSIFIED,
    role: d.role === 'consequence' ? 'consequence' : 'culprit',
    consequenceOf: d.consequenceOf ?? null,
    supersedes: d.supersedes ?? null,
    failures: event.kind === 'process_failed' ? (event.data.failures ?? null) : null,
    allProcessesAlike: d.allProcessesAlike === true,
    errorLine: tracebackLastLine(stderrTail) ?? lastLine ?? exit,
  };
}
