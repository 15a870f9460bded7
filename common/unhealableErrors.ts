// Errors that retrying cannot heal: the worker's configuration, a permission the platform refuses,
// something the job needs that does not exist. Activities and backends raise them; the activity
// layer turns them into non-retryable ApplicationFailures of these types (activities/failures.ts),
// and the job workflow fails the job with a reason that says what to fix. Everything else is
// transient and retried. Plain data and Error classes, so the workflow bundle may import them.

/** ApplicationFailure types of unhealable errors, one per kind. */
export const UNHEALABLE_FAILURE_TYPES = {
  /** The worker or the job lacks a setting: an unconfigured backend, a missing signing key, a spec field. */
  configuration: 'RoverConfigurationError',
  /** The platform refused Rover's identity (HTTP 401/403, e.g. a Kubernetes namespace without Rover's Role). */
  permission: 'RoverPermissionError',
  /** Something the job needs does not exist: its row in the store, a Kubernetes namespace. */
  notFound: 'RoverNotFoundError',
} as const;

export type UnhealableKind = keyof typeof UNHEALABLE_FAILURE_TYPES;
export type UnhealableFailureType = (typeof UNHEALABLE_FAILURE_TYPES)[UnhealableKind];

/** The failure types in a fixed order, for a retry policy's nonRetryableErrorTypes. */
export const UNHEALABLE_TYPE_LIST: readonly UnhealableFailureType[] = Object.values(UNHEALABLE_FAILURE_TYPES);

/** What the job's reason calls each kind. */
const KIND_WORDS: Record<UnhealableKind, string> = {
  configuration: 'configuration error',
  permission: 'permission denied',
  notFound: 'not found',
};

/**
 * An error no retry can heal. Its message says what is wrong and how to fix it; its `name` is the
 * failure type, so even a path that forgets to convert it reaches Temporal with that type.
 */
export class UnhealableError extends Error {
  constructor(
    readonly kind: UnhealableKind,
    message: string,
  ) {
    super(message);
    this.name = UNHEALABLE_FAILURE_TYPES[kind];
  }
}

export const configurationError = (message: string) => new UnhealableError('configuration', message);
export const permissionError = (message: string) => new UnhealableError('permission', message);
export const notFoundError = (message: string) => new UnhealableError('notFound', message);

/** The kind of a failure type, or undefined when the type is not an unhealable one. */
export function unhealableKindOf(type: string | undefined | null): UnhealableKind | undefined {
  for (const [kind, t] of Object.entries(UNHEALABLE_FAILURE_TYPES)) if (t === type) return kind as UnhealableKind;
  return undefined;
}

/**
 * The job's failure reason for an unhealable error of an activity:
 * "cannot launch nodes (configuration error): backend kubernetes is not configured on this worker; …".
 */
export function unhealableReason(kind: UnhealableKind, activity: string, message: string): string {
  return `cannot ${ACTIVITY_WORDS[activity] ?? `run ${activity}`} (${KIND_WORDS[kind]}): ${message}`;
}

/** What each job activity does, as the reason says it. */
const ACTIVITY_WORDS: Record<string, string> = {
  prepareJob: 'prepare the job',
  launchNodes: 'launch nodes',
  removeNodes: 'remove nodes',
  openRound: 'open a rendezvous round',
  watchNodes: 'watch the nodes',
  expireRound: 'settle a rendezvous round',
  describePendingNodes: 'read why nodes are pending',
  finishJob: 'finish the job',
};

/** The line a job shows while an activity keeps failing with an error that may heal. */
export function retryingLine(activity: string, message: string, retryInSeconds: number): string {
  return `${activity} is failing and will be retried in ${retryInSeconds} s: ${message}`;
}

/** The line a job shows once a step that was failing succeeds again. */
export function recoveredLine(activity: string, failedCalls: number): string {
  return `${activity} succeeded after ${failedCalls} failed call${failedCalls === 1 ? '' : 's'}`;
}
