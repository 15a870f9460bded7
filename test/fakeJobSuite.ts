// The job workflow's own test suites (workflows/job/*.test.ts): the suite's Temporal dev server,
// the run's one bundle of today's workflow code, and a worker per story serving a FakeJobWorld.
// Not Temporal's time-skipping test server: it skips no time while an activity is outstanding
// (a job always has its watchNodes long poll running once launched), and in trials a story's job
// there intermittently stalled until the test timed out.
import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, inject } from 'vitest';
import { createJobWorker } from '../workers/jobWorker.ts';
import type { elasticJob } from '../workflows/job/elasticJob.ts';
import { statusQuery, type ElasticJobInput, type JobStatus } from '../workflows/job/messages.ts';
import type { FakeJobWorld } from './fakeJobWorld.ts';
import { taskQueueFor, workflowBundle } from './helpers.ts';

/** How long a call a story polls with (a query, describe, history) may take before its wait asks again. */
const CALL_DEADLINE_MS = 2_000;

/** Sets the environment up for the enclosing describe block (beforeAll / afterAll). */
export function fakeJobSuite() {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await TestWorkflowEnvironment.createFromExistingServer({ address: inject('temporalAddress') });
  });
  afterAll(async () => {
    await env?.teardown();
  });
  /** Runs the client calls in `calls` on `handle`'s connection, failing after CALL_DEADLINE_MS instead of hanging. */
  const bounded = <T>(handle: WorkflowHandle, calls: () => Promise<T>): Promise<T> => handle.client.connection.withDeadline(Date.now() + CALL_DEADLINE_MS, calls);
  return {
    bounded,
    /** The job's status query, bounded. */
    status: (handle: WorkflowHandle): Promise<JobStatus> => bounded(handle, () => handle.query(statusQuery)),
    /** Runs `story` with a worker on its own task queue serving `world`; the job starts with a random id. */
    withJob: async <T>(title: string, world: FakeJobWorld, input: Omit<ElasticJobInput, 'jobId'>, story: (handle: WorkflowHandle<typeof elasticJob>) => Promise<T>): Promise<T> => {
      const taskQueue = taskQueueFor(title);
      const worker = await createJobWorker({ connection: env.nativeConnection, namespace: 'default', taskQueue, activities: world.activities(), workflowBundle: workflowBundle() });
      return worker.runUntil(async () => {
        const jobId = `fake-${randomUUID()}`;
        const handle = await env.client.workflow.start<typeof elasticJob>('elasticJob', { args: [{ jobId, ...input }], taskQueue, workflowId: `job-${jobId}` });
        return story(handle);
      });
    },
  };
}
