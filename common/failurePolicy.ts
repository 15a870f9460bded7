// What the job master does about a failure: two ordered tables, the first row that matches
// decides (the shape of JobSet's failure policy: rules in order, each naming one action).
// JobState gathers the facts where the failure arises and applies the action the table names;
// the decision lives here, pure and table-tested (common/failurePolicy.test.ts).

/** Why a node is down, as JobState learned it. */
export type NodeDownTrigger =
  /** A node fault reported as a process failure, a node_failed or node_lost event. */
  | 'down'
  /** Launched but never registered within spec.faultTolerance.pendingTimeout. */
  | 'pending'
  /** The pre-flight node check's verdict 'faulty'. */
  | 'checkFaulty'
  /** A straggler while training whose event asks for a relaunch (spec.diagnosis.relaunchStragglers). */
  | 'straggler';

export interface NodeDownFacts {
  trigger: NodeDownTrigger;
  /** Lost to the platform (a preemption, an eviction, the stack stopped): not the job's fault. */
  platformCause: boolean;
  /** nodeRelaunches < spec.faultTolerance.maxNodeRelaunches. */
  budgetLeft: boolean;
}

export type NodeDownAction =
  /** Replace the node by its next incarnation; `counted` spends the relaunch budget. */
  | { action: 'relaunch'; counted: boolean; avoidHost: boolean }
  /** Go on without it if spec.nodes.min still holds, else fail the job. */
  | { action: 'shrinkOrFail' }
  /** Keep the node as it is, with a warning. */
  | { action: 'keep' };

export interface PolicyRow<F, A> {
  rule: string;
  when: (facts: F) => boolean;
  then: A;
}

/** Rows in order. Counted relaunches are the job's faults: a host that keeps failing must not relaunch forever. */
export const NODE_DOWN_POLICY: readonly PolicyRow<NodeDownFacts, NodeDownAction>[] = [
  { rule: 'failed the node check', when: (f) => f.trigger === 'checkFaulty', then: { action: 'relaunch', counted: false, avoidHost: true } },
  { rule: 'lost to the platform', when: (f) => f.platformCause, then: { action: 'relaunch', counted: false, avoidHost: false } },
  { rule: 'straggler, relaunch budget spent', when: (f) => f.trigger === 'straggler' && !f.budgetLeft, then: { action: 'keep' } },
  { rule: 'straggler', when: (f) => f.trigger === 'straggler', then: { action: 'relaunch', counted: true, avoidHost: true } },
  { rule: 'within the relaunch budget', when: (f) => f.budgetLeft, then: { action: 'relaunch', counted: true, avoidHost: false } },
  { rule: 'relaunch budget spent', when: () => true, then: { action: 'shrinkOrFail' } },
];

/** A process failure a node's agent reported, as JobState sees it. */
export interface ProcessFailureFacts {
  /** Another node's failure explains it (its peers lost their connection): common/failureCulprit.ts. */
  consequence: boolean;
  /** The same crash of every process of the node before any step, twice in a row. */
  crashLoop: boolean;
  /** A user error seen before at the same step. */
  repeatedUserError: boolean;
  /** Classified a node fault (common/failureRules.ts) and the node is still live. */
  nodeFault: boolean;
}

export type ProcessFailureAction =
  /** Nothing beyond the node's last error: the round its culprit opened restarts it. */
  | 'ignore'
  /** The failure will repeat: fail the job with the rule's reason. */
  | 'failJob'
  /** The host, not the code: the node is down (NODE_DOWN_POLICY). */
  | 'nodeDown'
  /** The agent restarts the node's processes in place (spec.faultTolerance.maxProcessRestarts). */
  | 'restartInPlace';

export const PROCESS_FAILURE_POLICY: readonly PolicyRow<ProcessFailureFacts, ProcessFailureAction>[] = [
  { rule: "a consequence of another node's failure", when: (f) => f.consequence, then: 'ignore' },
  { rule: 'crash loop', when: (f) => f.crashLoop, then: 'failJob' },
  { rule: 'user error repeated at the same step', when: (f) => f.repeatedUserError, then: 'failJob' },
  { rule: 'node fault', when: (f) => f.nodeFault, then: 'nodeDown' },
  { rule: 'process failure', when: () => true, then: 'restartInPlace' },
];

/** The first row of `policy` whose `when` holds: its rule name and action. Every table ends in a catch-all. */
export function decide<F, A>(policy: readonly PolicyRow<F, A>[], facts: F): { rule: string; then: A } {
  const row = policy.find((r) => r.when(facts));
  if (!row) throw new Error('a failure policy must end with a row that always matches');
  return { rule: row.rule, then: row.then };
}
