// The job commands: `rover submit`, `status`, `list`, `scale`, `stop`. Each talks to the
// job's elasticJob workflow (id `job-<name>`) through the Temporal client, so anything they do
// can also be done with the `temporal` CLI or the Web UI.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Command } from 'commander';
import { loadConfig, type RoverConfig } from '../common/config.ts';
import { jobStaticDetails, jobStaticSummary } from '../common/jobSummaries.ts';
import { JOB_PHASES, type JobPhase } from '../common/phases.ts';
import { RoverBackend, RoverJobName, RoverJobState, RoverUser, RoverWorldSize } from '../common/searchAttributes.ts';
import { formatSpecErrors, formatSpecWarnings, loadJobSpecFile, type JobSpec } from '../common/spec/index.ts';
import {
  type ElasticJobInput,
  JOB_FAILED,
  type JobStatus,
  SCALE_REFUSED,
  scaleSignal,
  scaleUpdate,
  statusQuery,
  stopSignal,
} from '../workflows/job/messages.ts';
import { EXIT_INVALID_SPEC } from './validate.ts';
import { formatJobList, formatJobStatus, type JobListRow } from './format.ts';
import { readJobProgress } from './progress.ts';
import { withPendingReasons, withStore } from './shardProgress.ts';
import { temporalConnectionOptions } from '../common/temporalConnection.ts';

export const ELASTIC_JOB_WORKFLOW = 'elasticJob';
type ElasticJobWorkflow = (input: ElasticJobInput) => Promise<JobStatus>;
export type JobHandle = WorkflowHandle<ElasticJobWorkflow>;
export type SubmittedJobHandle = WorkflowHandleWithFirstExecutionRunId<ElasticJobWorkflow>;

/** A running workflow answers a query within this; a closed one needs a worker to replay it. */
const QUERY_TIMEOUT_RUNNING_MS = 15_000;
const QUERY_TIMEOUT_CLOSED_MS = 5_000;
/** How long `rover scale` waits for the workflow to accept or refuse the new size. */
const UPDATE_TIMEOUT_MS = 60_000;
/** Same code as an invalid spec: the input was wrong, nothing was done. */
const EXIT_INVALID_INPUT = 2;

export function jobWorkflowId(jobName: string): string {
  return `job-${jobName}`;
}

export function webUiUrl(config: RoverConfig, workflowId: string): string {
  const { uiPort, namespace } = config.temporal;
  return `http://127.0.0.1:${uiPort}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** The SDK wraps gRPC failures ("Failed to query Workflow"); the cause says what happened. */
function errorMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
}

export async function connectTemporal(config: RoverConfig): Promise<{ client: Client; close: () => Promise<void> }> {
  const { address, namespace } = config.temporal;
  const options = temporalConnectionOptions(config.temporal);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...options, connectTimeout: 5_000 });
  } catch (err) {
    const secured = config.temporal.tls !== undefined || config.temporal.apiKey !== undefined || config.temporal.apiKeyFile !== undefined;
    const fix = secured
      ? 'check that the server is up and that the CA, client certificate and key (ROVER_TEMPORAL_TLS_*) and the API key (ROVER_TEMPORAL_API_KEY or _FILE) are the ones it expects'
      : 'start the stack with `rover up` or point ROVER_TEMPORAL_ADDRESS at your server (a secured cluster also needs ROVER_TEMPORAL_TLS_* / ROVER_TEMPORAL_API_KEY)';
    throw new Error(`cannot reach Temporal at ${address}: ${errorMessage(err)}; ${fix}`);
  }
  return { client: new Client({ connection, namespace }), close: () => connection.close() };
}

export class JobAlreadyRunningError extends Error {
  constructor(
    readonly jobName: string,
    readonly workflowId: string,
  ) {
    super(
      `job "${jobName}" is already running (workflow ${workflowId}); stop it with \`rover stop ${jobName}\` or give metadata.name another value`,
    );
  }
}

export interface SubmitOptions {
  /** Task queue of the Rover worker that runs elasticJob. */
  taskQueue: string;
  /** Where the spec came from, kept in the memo for people reading the Web UI. */
  specFile?: string;
  /** Force continue-as-new at this history length (tests); default: when the server suggests. */
  continueAsNewAfterEvents?: number;
}

/** Starts the job's workflow; throws JobAlreadyRunningError if `job-<name>` is open. */
export async function submitJob(client: Client, spec: JobSpec, opts: SubmitOptions): Promise<SubmittedJobHandle> {
  const { name, user, group, labels } = spec.metadata;
  const workflowId = jobWorkflowId(name);
  try {
    return await client.workflow.start<ElasticJobWorkflow>(ELASTIC_JOB_WORKFLOW, {
      workflowId,
      taskQueue: opts.taskQueue,
      args: [{ jobId: name, spec, ...(opts.continueAsNewAfterEvents !== undefined && { continueAsNewAfterEvents: opts.continueAsNewAfterEvents }) }],
      // Set at start (the workflow keeps them current) so `rover list` shows the job at once.
      typedSearchAttributes: [
        { key: RoverJobName, value: name },
        { key: RoverJobState, value: 'PENDING' },
        { key: RoverWorldSize, value: 0 },
        { key: RoverUser, value: user },
        { key: RoverBackend, value: spec.spec.backend },
      ],
      // The job's line and spec excerpt in the Web UI; the workflow keeps its current details.
      staticSummary: jobStaticSummary(spec),
      staticDetails: jobStaticDetails(spec, opts.specFile),
      memo: { user, ...(group !== undefined && { group }), labels, ...(opts.specFile !== undefined && { specFile: opts.specFile }) },
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new JobAlreadyRunningError(name, workflowId);
    throw err;
  }
}

export interface ResolvedJob {
  handle: JobHandle;
  description: WorkflowExecutionDescription;
}

/**
 * Finds a job's workflow by job name, or by workflow id when `job` starts with `job-`
 * (the name wins: a job named `job-x` has the id `job-job-x`).
 */
export async function resolveJob(client: Client, job: string): Promise<ResolvedJob> {
  const candidates = [jobWorkflowId(job), ...(job.startsWith('job-') ? [job] : [])];
  for (const workflowId of candidates) {
    const handle = client.workflow.getHandle<ElasticJobWorkflow>(workflowId);
    try {
      const description = await handle.describe();
      if (description.type !== ELASTIC_JOB_WORKFLOW) {
        throw new Error(`workflow ${workflowId} is a ${description.type}, not a Rover job (${ELASTIC_JOB_WORKFLOW})`);
      }
      return { handle, description };
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  throw new Error(`no job "${job}": no workflow ${candidates.join(' or ')} in namespace ${client.options.namespace}; see \`rover list\``);
}

export interface JobStatusReading {
  status: JobStatus;
  /** 'result' when the workflow has closed and no worker answered the query. */
  source: 'query' | 'result';
}

/**
 * Waits for a job workflow to close and returns its final JobStatus: the result of a job that
 * completed (SUCCEEDED, STOPPED), or `details[0]` of the `JobFailed` failure of a FAILED job.
 * Throws WorkflowFailedError for any other end (terminated, timed out, a failure without a status).
 */
export async function finalJobStatus(handle: JobHandle): Promise<JobStatus> {
  try {
    return await handle.result();
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === JOB_FAILED && cause.details?.[0]) return cause.details[0] as JobStatus;
    throw err;
  }
}

/** Queries `status`; for a closed workflow nobody answers, falls back to its final status. */
export async function readJobStatus(client: Client, { handle, description }: ResolvedJob): Promise<JobStatusReading> {
  const running = description.status.name === 'RUNNING';
  const deadline = Date.now() + (running ? QUERY_TIMEOUT_RUNNING_MS : QUERY_TIMEOUT_CLOSED_MS);
  try {
    return { status: await client.withDeadline(deadline, () => handle.query(statusQuery)), source: 'query' };
  } catch (err) {
    if (running) {
      throw new Error(
        `job workflow ${handle.workflowId} did not answer the status query: ${errorMessage(err)}; is a Rover worker polling task queue ${description.taskQueue}? (\`rover up\` starts one)`,
      );
    }
  }
  try {
    return { status: await finalJobStatus(handle), source: 'result' };
  } catch (err) {
    const why = err instanceof WorkflowFailedError && err.cause ? err.cause.message : errorMessage(err);
    throw new Error(`job workflow ${handle.workflowId} ended as ${description.status.name} without a status: ${why}`);
  }
}

function requireRunning({ handle, description }: ResolvedJob, action: string): void {
  if (description.status.name !== 'RUNNING') {
    throw new Error(`job workflow ${handle.workflowId} has already ended (${description.status.name}); there is nothing to ${action}`);
  }
}

export function toJobListRow(info: WorkflowExecutionInfo): JobListRow {
  const attrs = info.typedSearchAttributes;
  return {
    job: attrs.get(RoverJobName) ?? info.workflowId.replace(/^job-/, ''),
    workflowId: info.workflowId,
    state: attrs.get(RoverJobState),
    worldSize: attrs.get(RoverWorldSize),
    user: attrs.get(RoverUser),
    startTime: info.startTime,
    temporalStatus: info.status.name,
  };
}

export function listQuery(state?: JobPhase): string {
  const byType = `WorkflowType = '${ELASTIC_JOB_WORKFLOW}'`;
  return state ? `${byType} AND RoverJobState = '${state}'` : byType;
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}

/** Bad command-line input: message on stderr, exit code 2, nothing done. */
function usageError(command: string, message: string): void {
  process.stderr.write(`rover ${command}: ${message}\n`);
  process.exitCode = EXIT_INVALID_INPUT;
}

/** Connects, runs `fn`, always closes the connection. */
async function withTemporal<T>(fn: (client: Client, config: RoverConfig) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const { client, close } = await connectTemporal(config);
  try {
    return await fn(client, config);
  } finally {
    await close();
  }
}

async function submitCommand(file: string, opts: { wait?: boolean; json?: boolean }): Promise<void> {
  const loaded = await loadJobSpecFile(file);
  if (!loaded.ok) {
    const count = loaded.errors.length;
    process.stderr.write(`${formatSpecErrors(loaded.errors, file)}\n${file}: ${count} error${count === 1 ? '' : 's'}; nothing was submitted\n`);
    process.exitCode = EXIT_INVALID_SPEC;
    return;
  }
  // Same resolution as `rover validate` (relative paths against the spec file's folder).
  if (loaded.warnings.length > 0) process.stderr.write(`${formatSpecWarnings(loaded.warnings, file)}\n`);
  await withTemporal(async (client, config) => {
    const handle = await submitJob(client, loaded.spec, { taskQueue: config.temporal.taskQueue, specFile: path.resolve(file), continueAsNewAfterEvents: config.continueAsNewAfterEvents });
    const submitted = {
      job: loaded.spec.metadata.name,
      workflowId: handle.workflowId,
      runId: handle.firstExecutionRunId,
      webUiUrl: webUiUrl(config, handle.workflowId),
    };
    if (!opts.json) {
      print(`submitted job ${submitted.job}\n  workflow id: ${submitted.workflowId}\n  run id:      ${submitted.runId}\n  Web UI:      ${submitted.webUiUrl}`);
    }
    if (!opts.wait) {
      if (opts.json) printJson(submitted);
      return;
    }
    const final = finalJobStatus(handle);
    if (!opts.json) {
      print('waiting for the job to finish (Ctrl-C stops waiting, not the job)');
      // Loaded here: watch.ts imports this module.
      const { followJob } = await import('./watch.ts');
      await followJob(client, config, handle, { until: final, startedAt: Date.now(), show: 'line', prefix: `job ${submitted.job}: ` });
    }
    let result: JobStatus;
    try {
      result = await final;
    } catch (err) {
      const why = err instanceof WorkflowFailedError && err.cause ? err.cause.message : errorMessage(err);
      throw new Error(`job workflow ${handle.workflowId} ended without a result: ${why}`);
    }
    if (opts.json) printJson({ ...submitted, status: result });
    else print(`job ${result.jobId} ${result.phase}${result.reason ? `: ${result.reason}` : ''}`);
    if (result.phase !== 'SUCCEEDED') process.exitCode = 1;
  });
}

async function statusCommand(job: string, opts: { json?: boolean }): Promise<void> {
  await withTemporal(async (client, config) => {
    const resolved = await resolveJob(client, job);
    const reading = await readJobStatus(client, resolved);
    const status = await withPendingReasons(config, reading.status);
    const startedAt = resolved.description.startTime.getTime();
    const progress = await withStore(config, (store) => readJobProgress(store, status, startedAt));
    if (opts.json) {
      printJson(progress ? { ...status, progress } : status);
      return;
    }
    print(formatJobStatus(status, progress));
    if (reading.source === 'result') print('\n(the workflow has ended and no worker answered the query: this is its final result)');
  });
}

async function listCommand(opts: { state?: string; json?: boolean }): Promise<void> {
  const state = opts.state?.toUpperCase();
  if (state !== undefined && !JOB_PHASES.includes(state as JobPhase)) {
    usageError('list', `--state must be one of ${JOB_PHASES.join(', ')} (got "${opts.state}")`);
    return;
  }
  await withTemporal(async (client) => {
    const rows: JobListRow[] = [];
    for await (const info of client.workflow.list({ query: listQuery(state as JobPhase | undefined) })) rows.push(toJobListRow(info));
    if (opts.json) printJson(rows);
    else print(formatJobList(rows));
  });
}

async function scaleCommand(job: string, n: string, opts: { signal?: boolean }): Promise<void> {
  if (!/^\d+$/.test(n) || Number(n) < 1) {
    usageError('scale', `the node count must be a positive whole number (got "${n}")`);
    return;
  }
  const request = { nodes: Number(n), requestId: randomUUID() };
  await withTemporal(async (client) => {
    const resolved = await resolveJob(client, job);
    requireRunning(resolved, 'scale');
    const { handle } = resolved;
    if (opts.signal) {
      await handle.signal(scaleSignal, request);
      print(`sent scale signal (nodes=${request.nodes}) to ${handle.workflowId}; check the outcome with \`rover status ${job}\``);
      return;
    }
    let status: JobStatus;
    try {
      status = await client.withDeadline(Date.now() + UPDATE_TIMEOUT_MS, () => handle.executeUpdate(scaleUpdate, { args: [request] }));
    } catch (err) {
      // A refusal's message is the whole reason; anything else failing the update is named as such.
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.type === SCALE_REFUSED) throw new Error(err.cause.message);
      if (err instanceof WorkflowUpdateFailedError) throw new Error(`scale to ${request.nodes} nodes failed: ${err.cause?.message ?? err.message}`);
      if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
        throw new Error(`${handle.workflowId} did not answer the scale update within ${UPDATE_TIMEOUT_MS / 1000} s; is a Rover worker running?`);
      }
      throw err;
    }
    print(`job ${status.jobId}: target nodes ${status.targetNodes} (phase ${status.phase}, world size ${status.worldSize})`);
  });
}

async function stopCommand(job: string, opts: { reason?: string }): Promise<void> {
  await withTemporal(async (client) => {
    const resolved = await resolveJob(client, job);
    requireRunning(resolved, 'stop');
    await resolved.handle.signal(stopSignal, opts.reason === undefined ? {} : { reason: opts.reason });
    print(`asked ${resolved.handle.workflowId} to stop; follow it with \`rover status ${job}\``);
  });
}

export function registerJobCommands(program: Command): void {
  program
    .command('submit')
    .argument('<file>', 'job spec file')
    .option('--wait', 'wait for the job to end; exit code 0 only if it SUCCEEDED')
    .option('--json', 'print JSON instead of text')
    .action(submitCommand);
  program
    .command('status')
    .argument('<job>', 'job name (metadata.name) or workflow id job-<name>')
    .option('--json', 'print the JobStatus as JSON')
    .action(statusCommand);
  program
    .command('list')
    .option('--state <phase>', `only jobs in this phase (${JOB_PHASES.join(', ')})`)
    .option('--json', 'print JSON instead of a table')
    .action(listCommand);
  program
    .command('scale')
    .argument('<job>', 'job name or workflow id')
    .argument('<n>', 'desired number of nodes, within spec.nodes.min..max')
    .option('--signal', 'send the scale signal (fire-and-forget) instead of the update that reports refusals')
    .action(scaleCommand);
  program
    .command('stop')
    .argument('<job>', 'job name or workflow id')
    .option('--reason <text>', 'recorded as the job reason')
    .action(stopCommand);
}
