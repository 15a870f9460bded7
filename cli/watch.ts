// Following a job as it trains: `rover watch <job>` (the status page, refreshed until the job
// ends), and the one-line progress of `rover submit --wait` and `rover up`. On a terminal the
// output is redrawn in place (log-update) with the phase in colour (picocolors); piped or
// redirected, it is plain lines, one each time the phase, world size or round changes and
// otherwise one every PLAIN_LINE_EVERY_MS, so a log file stays readable.
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { createLogUpdate } from 'log-update';
import pc from 'picocolors';
import { loadConfig, type RoverConfig } from '../common/config.ts';
import type { JobStatus } from '../workflows/job/messages.ts';
import { statusQuery } from '../workflows/job/messages.ts';
import { formatJobStatus, formatProgressLine } from './format.ts';
import { connectTemporal, finalJobStatus, resolveJob, type JobHandle } from './jobs.ts';
import { readJobProgress, type JobProgress } from './progress.ts';
import { withPendingReasons, withStore } from './shardProgress.ts';

/** How often a follower asks the workflow and the store. */
const REFRESH_MS = 2000;
/** Piped output: at most this long without a line while nothing changes. */
const PLAIN_LINE_EVERY_MS = 30_000;
/** A running workflow answers a query within this, or the follower tries again next refresh. */
const QUERY_TIMEOUT_MS = 10_000;

const PHASE_COLOURS: Partial<Record<JobStatus['phase'], (text: string) => string>> = {
  RUNNING: pc.green,
  SUCCEEDED: pc.green,
  FAILED: pc.red,
  STOPPED: pc.yellow,
};

/** The progress line with its phase coloured (colours only on a terminal that takes them). */
function colouredLine(status: JobStatus, progress: JobProgress | undefined): string {
  const line = formatProgressLine(status, progress);
  const colour = PHASE_COLOURS[status.phase] ?? pc.cyan;
  return colour(status.phase) + line.slice(status.phase.length);
}

export interface FollowOptions {
  /** The follower stops when this settles (the job's end, or the caller's own stop). */
  until: Promise<unknown>;
  /** When the job's workflow started (ms): the ETA's starting point. */
  startedAt: number;
  /** 'line': the one-line progress; 'page': the whole `rover status` page (rover watch). */
  show: 'line' | 'page';
  /** Put before every line, e.g. `job demo: `. */
  prefix?: string;
}

/**
 * Shows the job's progress until `options.until` settles. A query that times out (no worker
 * yet, a busy one) skips that refresh; the follower never fails the command it serves.
 */
export async function followJob(client: Client, config: RoverConfig, handle: JobHandle, options: FollowOptions): Promise<void> {
  const tty = process.stdout.isTTY === true;
  const live = tty ? createLogUpdate(process.stdout) : undefined;
  let ended = false;
  const end = options.until.then(
    () => void (ended = true),
    () => void (ended = true),
  );
  let lastKey = '';
  let lastPlainAt = 0;
  const prefix = options.prefix ?? '';
  while (!ended) {
    const status = await client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query(statusQuery)).catch(() => undefined);
    if (status && !ended) {
      const progress = await withStore(config, (store) => readJobProgress(store, status, options.startedAt));
      if (live) {
        const page = options.show === 'page' ? formatJobStatus(await withPendingReasons(config, status), progress) : undefined;
        live(page ?? prefix + colouredLine(status, progress));
      } else {
        const key = `${status.phase} ${status.worldSize} ${status.round}`;
        if (key !== lastKey || Date.now() - lastPlainAt >= PLAIN_LINE_EVERY_MS) {
          process.stdout.write(`${prefix}${formatProgressLine(status, progress)}\n`);
          lastKey = key;
          lastPlainAt = Date.now();
        }
      }
    }
    await Promise.race([end, new Promise((r) => setTimeout(r, REFRESH_MS))]);
  }
  live?.done();
}

async function watchCommand(job: string): Promise<void> {
  const config = loadConfig();
  const { client, close } = await connectTemporal(config);
  try {
    const { handle, description } = await resolveJob(client, job);
    const final = finalJobStatus(handle);
    await followJob(client, config, handle, { until: final, startedAt: description.startTime.getTime(), show: 'page' });
    const status = await final;
    process.stdout.write(`job ${status.jobId} ${status.phase}${status.reason ? `: ${status.reason}` : ''}\n`);
    if (status.phase !== 'SUCCEEDED') process.exitCode = 1;
  } finally {
    await close();
  }
}

export function registerWatchCommand(program: Command): void {
  program
    .command('watch')
    .argument('<job>', 'job name (metadata.name) or workflow id job-<name>')
    .addHelpText('after', '\nOn a terminal the status page is redrawn every 2 s; piped, one progress line per change. Exit code 0 only if the job SUCCEEDED.')
    .action(watchCommand);
}
