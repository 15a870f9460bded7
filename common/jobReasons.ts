// The words of the job master: why a round opens, why a job failed, what a warning says. One
// builder per message, so the branches of JobState and the workflow say which message and this
// file says what it reads. The text is part of recorded runs (round causes are activity inputs,
// reasons and warnings are in carried state): change a message here only on purpose.

/** The cause of an openRound action, written into the round's `round_opened` event. */
export const ROUND_CAUSE = {
  /** A scale request (or a Brain plan applied like one). */
  scale: (nodes: number) => `scale to ${nodes} nodes`,
  /** A Brain plan applied like a scale: which optimizer (initial, running) and its reason. */
  brainPlan: (optimizer: string, reason: string, nodes: number) => `Brain plan (${optimizer} optimizer: ${reason}): scale to ${nodes} nodes`,
  /** A failed or lost node's next incarnation joins its peers' new round. */
  relaunch: (node: number, incarnation: number) => `relaunch node ${node} as incarnation ${incarnation}`,
  /** A node that failed the pre-flight check is replaced. */
  nodeCheckRelaunch: (node: number, incarnation: number) => `relaunch node ${node} as incarnation ${incarnation} after its node check failed`,
  /** A straggler while training is replaced (spec.diagnosis.relaunchStragglers). */
  stragglerRelaunch: (node: number, incarnation: number) => `relaunch straggler node ${node} as incarnation ${incarnation}`,
  /** A straggler in the node check is left out (spec.diagnosis.excludeStragglers). */
  stragglerExcluded: (node: number) => `exclude straggler node ${node}`,
  /** The relaunch budget is spent and the survivors go on as a smaller world. */
  shrink: (nodes: number, why: string) => `shrink to ${nodes} nodes after ${why}`,
  /** The Brain's initial plan changed the node count before launch. */
  initialPlan: 'initial plan',
} as const;

/** Why a relaunch is not counted against maxNodeRelaunches (the note in its warning). */
export const NOT_COUNTED = 'not counted against maxNodeRelaunches';

/** The parenthesised note of a relaunch warning, by what caused the relaunch. */
export const RELAUNCH_NOTE = {
  /** A node check verdict 'faulty'. */
  nodeCheck: `the pre-flight check; ${NOT_COUNTED}`,
  /** A straggler while training, counted like a node fault. */
  straggler: 'spec.diagnosis.relaunchStragglers',
  /** Lost to the platform (stack stopped, pod evicted or preempted): `cause` says which. */
  platform: (cause: string) => `${cause}; ${NOT_COUNTED}`,
} as const;

/** Reasons and warnings JobState writes (job reason, node reason, or a warning line). */
export const JOB_REASON = {
  /** Warning after a relaunch; `note` says why it was relaunched or why it is not counted. */
  relaunched: (why: string, incarnation: number, note?: string) => `${why}: relaunched as incarnation ${incarnation}${note === undefined ? '' : ` (${note})`}`,
  /** The figure behind a relaunch refused or a job failed for the budget. */
  budgetExhausted: (used: number, max: number) => `node relaunch budget exhausted (${used}/${max})`,
  /** Warning: the budget is spent, and the job goes on with fewer nodes. */
  shrunk: (why: string, budget: string, nodes: number) => `${why}; ${budget}: continuing with ${nodes} nodes`,
  /** Job reason: the budget is spent, and too few nodes are left. */
  belowMin: (why: string, budget: string, left: number, min: number) => `${why}; ${budget} and ${left} nodes left, below spec.nodes.min ${min}`,
  /** Node reason: the node check found the node faulty in both rounds. */
  nodeCheckFaulty: (where: string) => `${where} failed the node check in both rounds`,
  /** Node reason: a straggler in the node check, left out. */
  stragglerExcluded: (where: string) => `${where} is a straggler in the node check: excluded (spec.diagnosis.excludeStragglers)`,
  /** Warning after a node was left out and the job goes on smaller. */
  continuingWith: (why: string, nodes: number) => `${why}; continuing with ${nodes} nodes`,
  /** Warning: a straggler in the node check, kept (`check` is its verdict line). */
  stragglerKept: (where: string, check: string) => `${where} is a straggler in the node check: ${check}`,
  /** Warning: a straggler while training that the budget does not let relaunch. */
  stragglerNotRelaunched: (what: string, budget: string) => `${what}; not relaunched: ${budget}`,
  /** Node reason: launched but not started within spec.faultTolerance.pendingTimeout. */
  pendingTimeout: (where: string, timeout: string, backendReason: string | null) =>
    `${where} still pending after ${timeout} (spec.faultTolerance.pendingTimeout): ${backendReason ?? 'the backend gives no reason'}`,
  /** A hang: no first step within spec.faultTolerance.startupTimeout (`idle`: e.g. "90 s"). */
  hangAtStartup: (idle: string) => `hang: no first step ${idle} after the training processes started (spec.faultTolerance.startupTimeout)`,
  /** A hang: no progress while training. */
  hangInTraining: (idle: string, step: string) => `hang: no training progress for ${idle} at step ${step}`,
  /** Job reason (hangAction fail) or warning (any other action) after a hang. */
  hangFailed: (what: string) => `${what} (spec.faultTolerance.hangAction fail; stacks in \`rover events\`)`,
  hangWarned: (what: string, action: string) => `${what}; action ${action}`,
  /** Job reason (onPoison fail) or warning (skip) after a shard failed too often. */
  poisonFailed: (shard: string) => `${shard}: poison (spec.dataset.onPoison: fail)`,
  poisonSkipped: (shard: string) => `${shard}: skipped (spec.dataset.onPoison: skip)`,
  /** Job reason: a user error repeats at the same step. */
  repeatedUserError: (failure: string, at: string, rule: string, errorLine: string) =>
    `${failure}: the same user error twice ${at} (rule ${rule}), failing fast: ${errorLine}`,
  /** Job reason: every process of a node failed alike before any step, twice in a row. */
  crashLoop: (failure: string, rule: string, errorLine: string) =>
    `${failure}: every process of the node failed the same way before any step, twice in a row (rule ${rule}), failing fast: ${errorLine}`,
  /** Node reason: a process failure the API classed a node fault. */
  nodeFault: (failure: string, rule: string) => `${failure}: node fault (rule ${rule})`,
  /** Node reason or warning: a straggler while training (compute seconds per step). */
  straggler: (where: string, seconds: number, medianSeconds: number) =>
    `${where} is a straggler: step compute ${seconds.toFixed(2)} s (job median ${medianSeconds.toFixed(2)} s)`,
  /** Warning: the latest round's world finished, and the nodes waiting outside it were stopped. */
  worldFinished: (round: number, nodes: number, waiting: number) =>
    `the world of round ${round} (${nodes} nodes) finished; ${waiting} waiting node${waiting === 1 ? '' : 's'} outside it stopped`,
  /** Scale refusals (the update's answer and the warning). */
  scaleOutOfRange: (nodes: number, min: number, max: number) => `cannot scale to ${nodes} nodes: must be within spec.nodes [min ${min}, max ${max}]`,
  scaleNotUnit: (nodes: number, unit: number) => `cannot scale to ${nodes} nodes: must be a multiple of spec.nodes.unit (${unit})`,
  scaleEnded: (phase: string) => `cannot scale: the job is already ${phase}`,
  /** Node's last error: a node failed (its exit code, signal and reason) or was lost. */
  nodeFailed: (where: string, exitCode: number | null, signal: string | null | undefined, reason: string | null | undefined) =>
    `${where} failed with exit code ${exitCode ?? 'unknown'}${signal ? `, signal ${signal}` : ''}${reason ? `: ${reason}` : ''}`,
  nodeLost: (where: string, reason: string | null | undefined) => `${where} lost${reason ? `: ${reason}` : ''}`,
  /** Node's last error when it was a consequence of another node's failure (its culprit's). */
  afterFailureOf: (error: string, culprit: number | null | undefined) => `${error}${AFTER_FAILURE_OF(culprit)}`,
  /** Node's check line (rover status): its verdict and best probe time; a straggler's median too. */
  checkLine: (verdict: string, bestSeconds: number | null, medianSeconds: number | null) => {
    const secs = (v: number | null) => (v === null ? 'none' : `${v.toFixed(2)} s`);
    return verdict === 'straggler' ? `straggler ${secs(bestSeconds)} (median ${secs(medianSeconds)})` : `${verdict} ${secs(bestSeconds)}`;
  },
  /** Warning: an event row no schema describes, skipped. */
  skippedEvent: (id: number, kind: string, nodeId: number | null, incarnation: number | null, problem: string) =>
    `event #${id} (${kind}${nodeId === null ? '' : ` of node ${nodeId} incarnation ${incarnation}`}) skipped: ${problem}`,
} as const;

/** What afterFailureOf adds; a last error that ends with it already names its culprit. */
const AFTER_FAILURE_OF = (culprit: number | null | undefined) => ` (after node ${culprit}'s failure)`;

/** Whether a node's last error already names the failure it followed (JOB_REASON.afterFailureOf). */
export const namesItsCulprit = (error: string): boolean => /\(after node [^)]*'s failure\)$/.test(error);

/** Reasons and warnings the job workflow writes itself, not JobState: a stop, a refused scale, its own error, a silent Brain. */
export const WORKFLOW_REASON = {
  /** Job reason: a stop signal that gave no reason of its own. */
  stoppedByUser: 'stopped by user',
  /** Job reason: the workflow was cancelled through Temporal, not stopped through Rover. */
  cancelled: 'workflow cancelled',
  /** Job reason: an error of the workflow's own code, or an activity's that is not known to be unhealable. */
  masterError: (message: string) => `job master error: ${message}`,
  /** The workflow failure's message should a FAILED job carry no reason (JobState always gives one). */
  failedWithoutReason: 'job failed',
  masterErrorWithoutReason: 'job master error',
  /** Warning: a scale signal refused on arrival (a signal cannot answer). */
  scaleSignalIgnored: (refusal: string) => `scale signal ignored: ${refusal}`,
  /** Warning: a queued scale refused when its turn came (a stop, or another scale before it). */
  scaleIgnored: (nodes: number, refusal: string) => `scale to ${nodes} ignored: ${refusal}`,
  /** Warning: the Brain did not answer for a plan (`stage`: initial, oom, running); the job goes on without it. */
  brainUnavailable: (stage: string, cause: string) => `Brain unavailable for the ${stage} plan, going on without it: ${cause}`,
} as const;
