// The Brain's worker on `rover-brain`: hosts the brainConfigSync workflows and their activity,
// and makes sure one sync workflow runs per configured source.
import { Client, Connection, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { NativeConnection, Worker, type WorkflowBundlePath, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createBrainActivities } from '../activities/brain.ts';
import { createSource, parseSourceList } from '../brain/sources/registry.ts';
import type { ConfigSource } from '../brain/sources/types.ts';
import type { RoverConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import type { Store } from '../store/index.ts';
import { brainSyncWorkflowId, setIntervalSignal, type BrainConfigSyncInput } from '../workflows/brain/messages.ts';
import { workflowSource } from './jobWorker.ts';
import { temporalConnectionOptions } from '../common/temporalConnection.ts';

export function configuredSources(config: RoverConfig, store: Store): ConfigSource[] {
  return parseSourceList(config.brain.sources).map((def) => createSource(def, { store }));
}

export interface BrainWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  store: Store;
  sources: ConfigSource[];
  logger: Logger;
  workflowBundle?: WorkflowBundleWithSourceMap | WorkflowBundlePath;
}

export function createBrainWorker(o: BrainWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : workflowSource()),
    activities: createBrainActivities({ store: o.store, sources: o.sources, logger: o.logger }),
    shutdownGraceTime: '5s',
  });
}

/** Visibility query for the running sync workflows of one task queue (ids and task queues are ours, never user input). */
export function runningSyncWorkflowsQuery(taskQueue: string): string {
  return `WorkflowType = 'brainConfigSync' AND ExecutionStatus = 'Running' AND TaskQueue = '${taskQueue.replace(/'/g, "''")}'`;
}

/**
 * Makes the sync workflows follow the configured sources: starts the one of every source unless
 * it already runs (then it takes the interval), and terminates the running ones on the same task
 * queue whose source is no longer configured. Returns the workflow ids of the configured sources.
 */
export async function ensureSyncWorkflows(
  client: Client,
  o: { sources: { name: string }[]; taskQueue: string; intervalMs: number; continueAsNewAfterSyncs?: number; logger?: Logger },
): Promise<string[]> {
  const ids: string[] = [];
  for (const source of o.sources) {
    const workflowId = brainSyncWorkflowId(source.name);
    const input: BrainConfigSyncInput = { source: source.name, intervalMs: o.intervalMs, ...(o.continueAsNewAfterSyncs ? { continueAsNewAfterSyncs: o.continueAsNewAfterSyncs } : {}) };
    try {
      await client.workflow.start('brainConfigSync', { workflowId, taskQueue: o.taskQueue, args: [input] });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      // Running already: it takes the configured interval from its next wait.
      await client.workflow.getHandle(workflowId).signal(setIntervalSignal, o.intervalMs);
    }
    ids.push(workflowId);
  }
  for await (const running of client.workflow.list({ query: runningSyncWorkflowsQuery(o.taskQueue) })) {
    if (ids.includes(running.workflowId)) continue;
    await client.workflow.getHandle(running.workflowId).terminate('its source is no longer in ROVER_BRAIN_SOURCES').then(
      () => o.logger?.info({ workflowId: running.workflowId }, 'sync workflow of a removed source ended'),
      (err: unknown) => o.logger?.warn({ workflowId: running.workflowId, err: (err as Error).message }, 'could not end the sync workflow of a removed source'),
    );
  }
  return ids;
}

/** The Brain part of the worker process: its Worker, with the sync workflows started. */
export async function startBrainWorker(config: RoverConfig, store: Store, connection: NativeConnection, logger: Logger): Promise<Worker> {
  const sources = configuredSources(config, store);
  const worker = await createBrainWorker({ connection, namespace: config.temporal.namespace, taskQueue: config.brain.taskQueue, store, sources, logger });
  const clientConnection = await Connection.connect(temporalConnectionOptions(config.temporal));
  try {
    const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
    await ensureSyncWorkflows(client, { sources, taskQueue: config.brain.taskQueue, intervalMs: config.brain.syncIntervalMs, logger });
  } finally {
    await clientConnection.close();
  }
  logger.info({ taskQueue: config.brain.taskQueue, sources: sources.map((s) => `${s.name} (${s.location})`) }, 'rover brain worker running');
  return worker;
}
