// Builds the Worker that hosts the job workflows and their activities on `rover-jobs`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundlePath, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { TASK_QUEUE_JOBS } from '../common/config.ts';

/** The workflows' entry module: the TypeScript source, or its compiled twin when this runs from dist/. */
export const workflowsPath = fileURLToPath(new URL(`../workflows/index.${import.meta.url.endsWith('.js') ? 'js' : 'ts'}`, import.meta.url));

/** The workflows' Temporal bundle in dist/, written by bin/build.js (which names it too). */
const WORKFLOW_BUNDLE = 'workflow-bundle.js';

/**
 * Where a worker gets its workflow code: run from dist/, the bundle `npm run build` made of the
 * compiled workflows (bin/build.js; no webpack at start); from the sources, bundled at start.
 */
export function workflowSource(): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  const prebuilt = fileURLToPath(new URL(`../${WORKFLOW_BUNDLE}`, import.meta.url));
  return import.meta.url.endsWith('.js') && existsSync(prebuilt) ? { workflowBundle: { codePath: prebuilt } } : { workflowsPath };
}

/** Bundles the workflow code (the test run does it once, in test/globalSetup.ts, for all its in-process workers). */
export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath, logger: undefined });
}

export interface JobWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue?: string;
  activities: object;
  workflowBundle?: WorkflowBundleWithSourceMap | WorkflowBundlePath;
  identity?: string;
}

export async function createJobWorker(o: JobWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue ?? TASK_QUEUE_JOBS,
    ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : workflowSource()),
    activities: o.activities,
    ...(o.identity ? { identity: o.identity } : {}),
    // A worker killed mid-run must hand its activities over quickly (see heartbeat timeouts).
    shutdownGraceTime: '5s',
  });
}
