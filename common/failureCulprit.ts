// The culprit, not the victims: when one training process of a job dies, its peers in the same
// round die soon after of a lost connection, a broken collective or a timeout. Only the failure
// that explains the others is the job's failure; the rest are its consequences. Pure, so the API
// (which judges each report as it arrives) and its table test share it.
import type { Classification, FailureFacts } from './failureRules.ts';

/**
 * How long after a round's culprit other failures in that round are taken as its consequences
 * (ms). Peers notice a killed process within a collective's round trip, and agents report within
 * their settle wait (agent.ts), so seconds suffice; beyond this a failure stands on its own.
 */
export const CONSEQUENCE_WINDOW_MS = 10_000;

/** Signals that kill a process from outside (the OOM killer, a preemption, an operator). */
const KILL_SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP'];
/** What a shell wrapper exits with when its child died of SIGKILL / SIGTERM (128 + n). */
const KILL_EXIT_CODES = [137, 143];

/** Whether the process (or the child its shell wrapper waited for) was killed by a signal from outside. */
export function killedFromOutside(exit: { exitCode: number | null; signal: string | null }): boolean {
  return (exit.signal !== null && KILL_SIGNALS.includes(exit.signal)) || (exit.exitCode !== null && KILL_EXIT_CODES.includes(exit.exitCode));
}

/**
 * How much a failure explains the others of its round, highest first:
 * 3 — killed from outside or a node fault (it did not die of its peers);
 * 2 — a user error (its own exception);
 * 1 — anything else: communication errors, aborts, unexplained exits (typically a victim).
 */
export function failureWeight(facts: FailureFacts, classification: Classification): 1 | 2 | 3 {
  if (killedFromOutside(facts) || facts.oomKilled || classification.class === 'nodeFault') return 3;
  if (classification.class === 'userError') return 2;
  return 1;
}

/** A lost or failed node (its agent gone): it explains every failure of its peers, like a kill. */
export const NODE_DOWN_WEIGHT = 3;

/** A reported process failure, as far as judging needs it. `at` is when the API received it (ms). */
export interface RoundFailure {
  node: number;
  incarnation: number;
  weight: number;
  at: number;
  /** When the failed process exited, by its node's clock (null: unknown, e.g. a lost node). */
  exitedAt: number | null;
}

export type FailureRole =
  /** The job's failure: charged to its node's maxProcessRestarts; may unseat an earlier, weaker culprit. */
  | { role: 'culprit'; supersedes: RoundFailure | null }
  /** A consequence of the round's culprit: no budget spent, never a user error of its own. */
  | { role: 'consequence'; of: RoundFailure };

/**
 * Judges a failure reported for a round against that round's culprit so far (null: none yet).
 * Within the window a stronger failure (higher weight) becomes the culprit and unseats the
 * earlier one — reports race, and a SIGKILLed rank's agent may report after its victims'; so
 * does one of equal weight whose process exited earlier (a victim's agent can report first; exit
 * times come from the nodes' clocks, exact on one host, skewed by milliseconds across hosts). A
 * weaker or later one is a consequence. Past the window, or from the culprit's own node, a
 * failure stands on its own.
 */
export function judgeFailure(culprit: RoundFailure | null, failure: RoundFailure, windowMs = CONSEQUENCE_WINDOW_MS): FailureRole {
  if (!culprit || failure.at - culprit.at > windowMs) return { role: 'culprit', supersedes: null };
  if (culprit.node === failure.node && culprit.incarnation === failure.incarnation) return { role: 'culprit', supersedes: null };
  const exitedFirst = failure.exitedAt !== null && culprit.exitedAt !== null && failure.exitedAt < culprit.exitedAt;
  if (failure.weight > culprit.weight || (failure.weight === culprit.weight && exitedFirst)) return { role: 'culprit', supersedes: culprit };
  return { role: 'consequence', of: culprit };
}

/** A node incarnation, as event data names it. */
interface NodeRef {
  node: number;
  incarnation: number;
}

/** The judgement as event data (process_failed, node_lost): the role and who it points at. */
export function judgementData(judged: FailureRole): { role: FailureRole['role']; consequenceOf?: NodeRef; supersedes?: NodeRef } {
  const ref = (f: RoundFailure): NodeRef => ({ node: f.node, incarnation: f.incarnation });
  if (judged.role === 'consequence') return { role: 'consequence', consequenceOf: ref(judged.of) };
  return { role: 'culprit', ...(judged.supersedes && { supersedes: ref(judged.supersedes) }) };
}
