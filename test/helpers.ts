// Shared helpers for tests that run against the real Temporal dev server.
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type WorkflowBundlePath } from '@temporalio/worker';
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

/** Today's workflow code, bundled once for the whole run (test/globalSetup.ts): no webpack per file. */
export function workflowBundle(): WorkflowBundlePath {
  return { codePath: inject('workflowBundlePath') };
}

/** A task queue named after the test, unique per run. */
export function taskQueueFor(title: string): string {
  return `test-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40)}-${randomUUID().slice(0, 8)}`;
}

/**
 * Whether a TCP connection to host:port is accepted within timeoutMs. To show a listener is bound
 * to 127.0.0.1 only, try 127.0.0.2: on Linux all of 127.0.0.0/8 is this machine, so a listener on
 * every interface accepts it and one on 127.0.0.1 refuses it.
 */
export function acceptsConnection(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (accepted: boolean) => {
      socket.destroy();
      resolve(accepted);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}
