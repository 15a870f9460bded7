// Shared helpers for tests that run against the real Temporal dev server.
import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { inject } from 'vitest';
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

export function temporalAddress(): string {
  return inject('temporalAddress');
}

export async function temporalClient(): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address: temporalAddress() });
  return { client: new Client({ connection, namespace: 'default' }), close: () => connection.close() };
}

export function workerConnection(): Promise<NativeConnection> {
  return NativeConnection.connect({ address: temporalAddress() });
}

/** A task queue named after the test, unique per run. */
export function taskQueueFor(title: string): string {
  return `test-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40)}-${randomUUID().slice(0, 8)}`;
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
