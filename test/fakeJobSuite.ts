// The job workflow's own test suites (workflows/job/*.test.ts): the suite's Temporal server, one
// bundle of today's workflow code per run, and a worker per story serving a FakeJobWorld.
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, inject } from 'vitest';
import { createJobWorker } from '../workers/jobWorker.ts';
import type { elasticJob } from '../workflows/job/elasticJob.ts';
import type { ElasticJobInput } from '../workflows/job/messages.ts';
import type { FakeJobWorld } from './fakeJobWorld.ts';
import { taskQueueFor, workflowBundle } from './helpers.ts';

/** Sets the environment up for the enclosing describe block (beforeAll / afterAll). */
export function fakeJobSuite() {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await TestWorkflowEnvironment.createFromExistingServer({ address: inject('temporalAddress') });
  });
  afterAll(async () => {
    await env?.teardown();
  });
  return {
    client: (): Client => env.client,
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
