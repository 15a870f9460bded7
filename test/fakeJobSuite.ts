// The job workflow's own test suites (workflows/job/*.test.ts): Temporal's time-skipping test
// server (deploy/local/temporalTestServer.ts), one bundle of today's workflow code per run, and a
// worker per story serving a FakeJobWorld. Awaiting a job's result lets the server's clock jump to
// the next timer, but only while no activity is outstanding (running or waiting to retry).
import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes.js';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, inject } from 'vitest';
import { resolveTemporalTestServer } from '../deploy/local/temporalTestServer.ts';
import { ROVER_SEARCH_ATTRIBUTES } from '../common/searchAttributes.ts';
import { createJobWorker } from '../workers/jobWorker.ts';
import type { elasticJob } from '../workflows/job/elasticJob.ts';
import { statusQuery, type ElasticJobInput, type JobStatus } from '../workflows/job/messages.ts';
import type { FakeJobWorld } from './fakeJobWorld.ts';
import { taskQueueFor, workflowBundle } from './helpers.ts';

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
 * How long a call a story polls with (a query, describe, history) may take. On the test server such
 * a call sometimes went unanswered for over a minute (seen in the continue-as-new story, where runs
 * hand over every batch); with a deadline the story's wait asks again.
 */
const CALL_DEADLINE_MS = 2_000;

/** Sets the environment up for the enclosing describe block (beforeAll / afterAll). */
export function fakeJobSuite() {
  let env: TestWorkflowEnvironment;
  /** The suite's dev server (test/globalSetup.ts), for the stories the test server cannot carry (see withJobOnDevServer). */
  let devEnv: TestWorkflowEnvironment;
  beforeAll(async () => {
    if (!('path' in testServer)) return;
    env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: testServer.path } } });
    // The workflow upserts Rover's search attributes, as on the dev server (deploy/local/devServer.ts).
    const searchAttributes = Object.fromEntries(ROVER_SEARCH_ATTRIBUTES.map((key) => [key.name, encodeSearchAttributeIndexedValueType(key.type)!]));
    await env.connection.operatorService.addSearchAttributes({ namespace: 'default', searchAttributes });
    devEnv = await TestWorkflowEnvironment.createFromExistingServer({ address: inject('temporalAddress') });
  });
  afterAll(async () => {
    await devEnv?.teardown();
    await env?.teardown();
  });
  /** The world stamps its events with the server's time (a round's join deadline counts from it), which may have jumped ahead of the wall clock while an earlier story awaited its job's result. */
  const followServerClock = async (on: TestWorkflowEnvironment, world: FakeJobWorld) => {
    world.clockAheadMs = (await on.currentTimeMs()) - Date.now();
  };
  /** Runs the client calls in `calls` on `handle`'s connection, failing after CALL_DEADLINE_MS instead of hanging. */
  const bounded = <T>(handle: WorkflowHandle, calls: () => Promise<T>): Promise<T> => handle.client.connection.withDeadline(Date.now() + CALL_DEADLINE_MS, calls);
  const withJobOn =
    (on: () => TestWorkflowEnvironment) =>
    async <T>(title: string, world: FakeJobWorld, input: Omit<ElasticJobInput, 'jobId'>, story: (handle: WorkflowHandle<typeof elasticJob>) => Promise<T>): Promise<T> => {
      const taskQueue = taskQueueFor(title);
      await followServerClock(on(), world);
      const worker = await createJobWorker({ connection: on().nativeConnection, namespace: 'default', taskQueue, activities: world.activities(), workflowBundle: workflowBundle() });
      return worker.runUntil(async () => {
        const jobId = `fake-${randomUUID()}`;
        const handle = await on().client.workflow.start<typeof elasticJob>('elasticJob', { args: [{ jobId, ...input }], taskQueue, workflowId: `job-${jobId}` });
        return story(handle);
      });
    };
  return {
    bounded,
    /** The job's status query, bounded. */
    status: (handle: WorkflowHandle): Promise<JobStatus> => bounded(handle, () => handle.query(statusQuery)),
    /** Runs `story` on the test server with a worker on its own task queue serving `world`; the job starts with a random id. */
    withJob: withJobOn(() => env),
    /**
     * The same on the suite's dev server. For the continue-as-new story: on the test server its job
     * stopped handing over (no new run for a minute) in about one run of the file in three.
     */
    withJobOnDevServer: withJobOn(() => devEnv),
  };
}
