// Waiting on conditions and on job outcomes, free of vitest so benchmarks can use them too.
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { JobStatus } from '../workflows/job/messages.ts';

/** Polls `check` until it returns a truthy value, failing with `what` after the deadline. */
export async function waitUntil<T>(check: () => T | Promise<T>, what: string, timeoutMs = 30_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
}

/**
 * The final status of a job workflow, whatever its Temporal outcome: a job that completes returns
 * its status; a FAILED job fails its workflow with an ApplicationFailure of type `JobFailed` whose
 * first detail is the final status. Any other workflow failure is rethrown.
 */
export async function jobOutcome(handle: WorkflowHandle): Promise<JobStatus> {
  try {
    return (await handle.result()) as JobStatus;
  } catch (err) {
    if (err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure && err.cause.type === 'JobFailed') {
      return err.cause.details?.[0] as JobStatus;
    }
    throw err;
  }
}
