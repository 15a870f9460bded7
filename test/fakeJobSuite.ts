// The job workflow's own test suites (workflows/job/*.test.ts): Temporal's time-skipping test
// server (deploy/local/temporalTestServer.ts), one bundle of today's workflow code per file, and a
// worker per story serving a FakeJobWorld. The server's clock stands still only while a story
// says so: `skip` moves it forward at once, and awaiting a job's result lets it run to the next
// timer, so a backoff or a deadline costs no wall-clock time.
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes.js';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe } from 'vitest';
import { resolveTemporalTestServer } from '../deploy/local/temporalTestServer.ts';
import { ROVER_SEARCH_ATTRIBUTES } from '../common/searchAttributes.ts';
import { bundleWorkflows, createJobWorker } from '../workers/jobWorker.ts';
import type { elasticJob } from '../workflows/job/elasticJob.ts';
import { statusQuery, type ElasticJobInput, type JobStatus } from '../workflows/job/messages.ts';
import type { FakeJobWorld } from './fakeJobWorld.ts';
import { taskQueueFor } from './helpers.ts';

/** The test server binary (installed into .tools/ when missing), or why there is none: CI fails, elsewhere the suites skip. */
const testServer: { path: string } | { missing: string } = await resolveTemporalTestServer((m) => console.log(`[temporal-test-server] ${m}`)).then(
  (path) => ({ path }),
  (err: unknown) => {
    const why = err instanceof Error ? err.message : String(err);
    if (process.env.CI === 'true') throw new Error(`the workflow tests need the Temporal test server, and CI must have it (.ci/run installs it): ${why}`);
    console.warn(`[temporal-test-server] the workflow tests are skipped: ${why}`);
    return { missing: why.split('\n')[0]! };
  },
);

/** `describe` for a suite of fake-world stories; skipped, saying why, where the test server is missing outside CI. */
export function describeFakeJobs(title: string, suite: () => void): void {
  if ('missing' in testServer) describe.skip(`${title} (skipped: ${testServer.missing})`, suite);
  else describe(title, suite);
}

/**
 * How long a status query may take. On the test server a query sometimes went unanswered for 76–83 s
 * (seen in the continue-as-new story, where runs hand over every batch); with a deadline the
 * caller's wait asks again.
 */
const QUERY_DEADLINE_MS = 2_000;

/** Sets the environment up for the enclosing describe block (beforeAll / afterAll). */
export function fakeJobSuite() {
  let env: TestWorkflowEnvironment;
  let bundle: WorkflowBundleWithSourceMap;
  beforeAll(async () => {
    if (!('path' in testServer)) return;
    env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: testServer.path } } });
    // The workflow upserts Rover's search attributes, as on the dev server (deploy/local/devServer.ts).
    const searchAttributes = Object.fromEntries(ROVER_SEARCH_ATTRIBUTES.map((key) => [key.name, encodeSearchAttributeIndexedValueType(key.type)!]));
    await env.connection.operatorService.addSearchAttributes({ namespace: 'default', searchAttributes });
    bundle = await bundleWorkflows();
  });
  /** The world stamps its events with the server's time (a round's join deadline counts from it), which earlier jobs' skips moved ahead of the wall clock. */
  const followServerClock = async (world: FakeJobWorld) => {
    world.clockAheadMs = (await env.currentTimeMs()) - Date.now();
  };
  afterAll(async () => {
    await env?.teardown();
  });
  return {
    client: (): Client => env.client,
    /** The job's status query, failing after QUERY_DEADLINE_MS instead of hanging. */
    status: (handle: WorkflowHandle): Promise<JobStatus> => env.client.connection.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(statusQuery)),
    /** Moves the server's clock `ms` forward at once, firing every timer due on the way; the world's clock follows. */
    skip: async (world: FakeJobWorld, ms: number): Promise<void> => {
      await env.sleep(ms);
      await followServerClock(world);
    },
    /** Runs `story` with a worker on its own task queue serving `world`; the job starts with a random id. */
    withJob: async <T>(title: string, world: FakeJobWorld, input: Omit<ElasticJobInput, 'jobId'>, story: (handle: WorkflowHandle<typeof elasticJob>) => Promise<T>): Promise<T> => {
      const taskQueue = taskQueueFor(title);
      await followServerClock(world);
      const worker = await createJobWorker({ connection: env.nativeConnection, namespace: 'default', taskQueue, activities: world.activities(), workflowBundle: bundle });
      return worker.runUntil(async () => {
        const jobId = `fake-${randomUUID()}`;
        const handle = await env.client.workflow.start<typeof elasticJob>('elasticJob', { args: [{ jobId, ...input }], taskQueue, workflowId: `job-${jobId}` });
        return story(handle);
      });
    },
  };
}
