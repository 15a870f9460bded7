// The edge between Rover's errors and Temporal's: an UnhealableError (common/unhealableErrors.ts)
// leaves an activity as a non-retryable ApplicationFailure of its type, so the workflow fails the
// job with the message instead of retrying forever; every other error stays retryable.
import { ApplicationFailure } from '@temporalio/common';
import { UNHEALABLE_FAILURE_TYPES, UnhealableError } from '../common/unhealableErrors.ts';

/** The error as the activity should throw it: unhealable ones as non-retryable typed failures, others unchanged. */
export function asActivityFailure(err: unknown): unknown {
  if (!(err instanceof UnhealableError)) return err;
  return ApplicationFailure.create({ type: UNHEALABLE_FAILURE_TYPES[err.kind], message: err.message, nonRetryable: true });
}

/** The activities, each throwing its unhealable errors as non-retryable typed failures. */
export function withFailureTypes<T extends object>(activities: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] =
      typeof fn === 'function'
        ? async (...args: unknown[]) => {
            try {
              return await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
            } catch (err) {
              throw asActivityFailure(err);
            }
          }
        : fn;
  }
  return wrapped as T;
}
