// Builds the Worker that hosts the job workflows and their activities on `rover-jobs`.
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { TASK_QUEUE_JOBS } from '../common/config.ts';

/** The workflows' entry module: the TypeScript source, or its compiled twin when this runs from dist/. */
export const workflowsPath = fileURLToPath(new URL(`../workflows/index.${import.meta.url.endsWith('.js') ? 'js' : 'ts'}`, import.meta.url));

/** Bundles the workflow code once; tests share one bundle across their workers. */
export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath, logger: undefined });
}

export interface JobWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue?: string;
  activities: object;
  workflowBundle?: WorkflowBundleWithSourceMap;
  identity?: string;
}

export async function createJobWorker(o: JobWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue ?? TASK_QUEUE_JOBS,
    ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : { workflowsPath }),
    activities: o.activities,
    ...(o.identity ? { identity: o.identity } : {}),
    // A worker killed mid-run must hand its activities over quickly (see heartbeat timeouts).
    shutdownGraceTime: '5s',
  });
}
