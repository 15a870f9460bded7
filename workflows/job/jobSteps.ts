// How the job workflow runs one step (an activity) and its long-poll watch (watchNodes): a stop
// ends a step's wait at once, an error that cannot heal ends the job with its fix, and an error
// that may heal (a store outage) is retried on a bounded schedule that the job's status shows
// while it lasts.
import { ActivityFailure, type ActivityOptions, ApplicationFailure, CancellationScope, condition, proxyActivities, sleep } from '@temporalio/workflow';
import type { JobActivities } from '../../common/jobActivities.ts';
import { oneLine } from '../../common/jobSummaries.ts';
import { UNHEALABLE_TYPE_LIST, type UnhealableKind, unhealableKindOf } from '../../common/unhealableErrors.ts';

/** Tries of one call (a step's activity, or the watch) before the workflow hears of its error (backoff 1 s, 2 s, 4 s). */
const TRIES_PER_CALL = 4;
/** Pause before the step's next call after its tries failed: 10 s more per call, at most this. */
const MAX_PAUSE_S = 60;

const ACTIVITY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', nonRetryableErrorTypes: [...UNHEALABLE_TYPE_LIST] },
};
const BOUNDED_OPTIONS: ActivityOptions = { ...ACTIVITY_OPTIONS, retry: { ...ACTIVITY_OPTIONS.retry, maximumAttempts: TRIES_PER_CALL } };

// Long poll: returns on events the job acts on or after ROVER_WATCH_MAX_WAIT_MS (≤ 1 h), so an
// idle job's history stays small; heartbeats every poll, so a dead worker hands it over within
// the heartbeat timeout.
const WATCH_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '5 seconds', nonRetryableErrorTypes: [...UNHEALABLE_TYPE_LIST] },
};
/** The watch of runs recorded before it was bounded: retried forever, unseen in the status. */
const unboundedWatcher = proxyActivities<Pick<JobActivities, 'watchNodes'>>(WATCH_OPTIONS);
const boundedWatcher = proxyActivities<Pick<JobActivities, 'watchNodes'>>({ ...WATCH_OPTIONS, retry: { ...WATCH_OPTIONS.retry, maximumAttempts: TRIES_PER_CALL } });
type WatchInput = Parameters<JobActivities['watchNodes']>[0];

/** The job's activities, each call carrying a one-line summary (what it does and why) for the Web UI's history. */
export const summarized = (summary: string) => proxyActivities<JobActivities>({ ...ACTIVITY_OPTIONS, summary: oneLine(summary) });
const bounded = (summary: string) => proxyActivities<JobActivities>({ ...BOUNDED_OPTIONS, summary: oneLine(summary) });

/** Thrown out of a step when a stop arrived while it waited: the job ends STOPPED. */
export class StopRequested extends Error {}

/** An activity's error that no retry heals, as the job's reason needs it; undefined for any other error. */
export function unhealableOf(err: unknown): { kind: UnhealableKind; activity: string; message: string } | undefined {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof ApplicationFailure)) return undefined;
  const kind = unhealableKindOf(err.cause.type);
  return kind && { kind, activity: err.activityType, message: err.cause.message };
}

export interface JobStepsOptions {
  /** False in runs recorded before steps were bounded: every call then waits for its activity, retried forever. */
  bounded: boolean;
  /** False in runs recorded before the watch was bounded: it is retried forever. */
  boundedWatch: boolean;
  stopped(): boolean;
  /** A step's tries failed with an error that may heal; it is called again in `pauseS` seconds. */
  retrying(activity: string, message: string, pauseS: number): void;
  /** A step that had failed `failedCalls` times succeeded. */
  recovered(activity: string, failedCalls: number): void;
}

export function createJobSteps(o: JobStepsOptions) {
  /** Runs `work` until it settles or a stop arrives; on a stop, cancels it and throws StopRequested. */
  const untilStop = async <T>(work: () => Promise<T>): Promise<T> => {
    if (o.stopped()) throw new StopRequested('stop requested');
    const working = new CancellationScope();
    const watching = new CancellationScope();
    const done = working.run(work);
    const stop = watching.run(() => condition(o.stopped));
    stop.catch(() => undefined);
    try {
      const first = await Promise.race([done.then((value) => ({ value })), stop.then(() => undefined)]);
      if (first) return first.value;
      working.cancel();
      done.catch(() => undefined);
      throw new StopRequested('stop requested');
    } finally {
      watching.cancel();
    }
  };

  /**
   * Calls `call` until it settles. Once an error that may heal used up a call's tries
   * (TRIES_PER_CALL), the status says so (o.retrying) and the next call follows a pause, 10 s
   * more per failed call and at most MAX_PAUSE_S; the first success after is reported too
   * (o.recovered). Any other error, and a stop during a pause (StopRequested), is thrown.
   */
  const retried = async <T>(summary: string, call: () => Promise<T>): Promise<T> => {
    let failing: string | undefined;
    for (let calls = 1; ; calls += 1) {
      try {
        const result = await call();
        if (failing !== undefined) o.recovered(failing, calls - 1);
        return result;
      } catch (err) {
        // Out of tries with an error that may heal (a non-retryable one, or a cancellation, ends the job).
        if (!(err instanceof ActivityFailure) || err.retryState !== 'MAXIMUM_ATTEMPTS_REACHED') throw err;
        failing = err.activityType;
        const pauseS = Math.min(10 * calls, MAX_PAUSE_S);
        o.retrying(err.activityType, err.cause?.message ?? err.message, pauseS);
        await untilStop(() => sleep(pauseS * 1000, { summary: oneLine(`${err.activityType} failed ${TRIES_PER_CALL} times; call it again: ${summary}`) }));
      }
    }
  };

  /** One step of the job: an activity call (`call` picks it), with its summary for the Web UI. */
  const step = async <T>(summary: string, call: (activities: JobActivities) => Promise<T>): Promise<T> => {
    if (!o.bounded) return call(summarized(summary));
    return retried(summary, () => untilStop(() => call(bounded(summary))));
  };

  /**
   * The job's watch (watchNodes) with its summary. A stop does not cancel a call under way (the
   * job's loop ends the job and leaves it), only a pause between calls.
   */
  const watch = (summary: string, input: WatchInput): ReturnType<JobActivities['watchNodes']> => {
    const call = (watcher: typeof boundedWatcher) => watcher.watchNodes.executeWithOptions({ summary }, [input]);
    return o.boundedWatch ? retried(summary, () => call(boundedWatcher)) : call(unboundedWatcher);
  };

  return { step, untilStop, watch };
}
