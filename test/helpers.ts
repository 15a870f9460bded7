// Shared helpers for tests that run against the real Temporal dev server.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { inject } from 'vitest';

// The waits need no vitest: benchmarks use them too.
export { jobOutcome, waitUntil } from './waits.ts';

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
