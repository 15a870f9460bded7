// A failure event (process_failed, node_failed, node_lost) as the job master reads it: written by
// the API or the worker, which classified it and judged it culprit or consequence where it was seen.
import type { JobEvent } from './events.ts';
import { FAILURE_CLASSES, tracebackLastLine, type Classification } from './failureRules.ts';

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

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

function nodeIncarnation(v: unknown): NodeIncarnation | null {
  const o = v as { node?: unknown; incarnation?: unknown } | null;
  const node = num(o?.node);
  const incarnation = num(o?.incarnation);
  return node === null || incarnation === null ? null : { node, incarnation };
}

function classification(v: unknown): Classification {
  const o = (v ?? {}) as { class?: unknown; rule?: unknown; traceback?: unknown };
  const cls = FAILURE_CLASSES.find((c) => c === o.class) ?? 'transient';
  return { class: cls, rule: str(o.rule) ?? 'default', traceback: str(o.traceback) };
}

/** Reads a process_failed event's data; fields missing from older events get neutral values. */
export function readFailureEvent(event: JobEvent): FailureEvent {
  const d = event.data;
  const exitCode = num(d.exitCode);
  const signal = str(d.signal);
  const stderrTail = typeof d.stderrTail === 'string' ? d.stderrTail : '';
  const lastLine = stderrTail.trimEnd().split('\n').at(-1)?.trim() || null;
  const exit = signal ? `killed by ${signal}` : `exit code ${exitCode ?? 'none'}`;
  return {
    exitCode,
    signal,
    step: num(d.step),
    round: num(d.round),
    failure: classification(d.failure),
    role: d.role === 'consequence' ? 'consequence' : 'culprit',
    consequenceOf: nodeIncarnation(d.consequenceOf),
    supersedes: nodeIncarnation(d.supersedes),
    failures: num(d.failures),
    allProcessesAlike: d.allProcessesAlike === true,
    errorLine: tracebackLastLine(stderrTail) ?? lastLine ?? exit,
  };
}
