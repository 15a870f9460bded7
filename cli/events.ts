// `rover events <job>`: the job's event bus (node lifecycle, rendezvous rounds, classified
// failures, diagnosis evidence), read from the store (ROVER_STORE_URL). --follow keeps polling
// until the job has ended; --json prints one JSON object per line.
import { untilInterrupted } from './output.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { loadConfig } from '../common/config.ts';
import { parseJobEvent, type BusEvent } from '../common/events.ts';
import { isTerminalPhase, type JobPhase } from '../common/phases.ts';
import { openStore, type NodeEvent, type Store } from '../store/index.ts';

export interface EventsOptions {
  follow: boolean;
  kinds: string[];
  json: boolean;
  write: (text: string) => void;
  pollMs?: number;
  signal?: AbortSignal;
}

/** The store's job id for `job`: its name, or the workflow id `job-<name>`. */
export async function resolveJobId(store: Store, job: string): Promise<string> {
  if (await store.jobs.get(job)) return job;
  if (job.startsWith('job-') && (await store.jobs.get(job.slice('job-'.length)))) return job.slice('job-'.length);
  throw new Error(`no job ${job} in the store (${loadConfig().storeUrl.replace(/\/\/[^@]*@/, '//…@')}); is ROVER_STORE_URL right?`);
}

/** Prints the job's events; with follow, until the job ended and its last events are out. Returns how many. */
export async function printEvents(store: Store, jobId: string, o: EventsOptions): Promise<number> {
  let cursor = 0;
  let printed = 0;
  for (;;) {
    const ended = isTerminalPhase(((await store.jobs.get(jobId))?.phase ?? 'FAILED') as JobPhase);
    for (;;) {
      const batch = await store.nodeEvents.list(jobId, { after: cursor, kinds: o.kinds, limit: 500 });
      for (const row of batch) {
        const event = busEvent(row);
        o.write(o.json ? `${JSON.stringify(event)}\n` : formatEvent(event));
        printed++;
      }
      cursor = batch.at(-1)?.id ?? cursor;
      if (batch.length < 500) break;
    }
    if (!o.follow || ended || o.signal?.aborted) return printed;
    await sleep(o.pollMs ?? 500, undefined, { signal: o.signal }).catch(() => {});
  }
}

/** A stored row read through its kind's schema (common/events.ts). */
function busEvent(row: NodeEvent): BusEvent {
  const parsed = parseJobEvent({ id: row.id, kind: row.kind, nodeId: row.nodeId, incarnation: row.incarnation, data: row.data, createdAt: row.createdAt });
  const origin = { id: row.id, at: row.createdAt, jobId: row.jobId, nodeId: row.nodeId, incarnation: row.incarnation, rank: row.rank, source: row.source };
  if ('rejected' in parsed) return { ...origin, kind: row.kind, data: row.data, problem: parsed.rejected.problem };
  // The parsed event's id, time and node are the row's: spread after, they keep origin's order.
  return { ...origin, ...parsed.event };
}

/** Long text an event carries, printed indented under its line instead of in it. */
function evidenceOf(e: Exclude<BusEvent, { problem: string }>): (string | undefined)[] {
  switch (e.kind) {
    case 'stack_dump':
      return [e.data.stack, e.data.processTree];
    case 'process_failed':
    case 'node_failed':
    case 'node_succeeded':
    case 'node_lost':
    case 'standby_failed':
      return [e.data.stderrTail];
    default:
      return [];
  }
}
/** Fields left out of an event's line: the evidence under it, and a stack dump's log tail (the node's log has it). */
const NOT_IN_LINE = new Set(['stack', 'processTree', 'stderrTail', 'logTail']);

/** One human line (and, for evidence such as stack dumps, the indented text after it). */
export function formatEvent(e: BusEvent): string {
  const time = new Date(e.at).toISOString().replace('T', ' ').replace('Z', '');
  const who = e.nodeId === null ? '-' : `node ${e.nodeId}/${e.incarnation ?? '?'}${e.rank === null ? '' : ` rank ${e.rank}`}`;
  const line = (summary: string) => `${time}  ${(e.source || '-').padEnd(7)} ${e.kind.padEnd(20)} ${who.padEnd(18)} ${summary}\n`;
  // Not guessed at: a row its kind's schema does not describe says so instead of its fields.
  if ('problem' in e) return line(`(unreadable: ${e.problem})`);
  const summary = Object.entries(e.data)
    .filter(([k, v]) => !NOT_IN_LINE.has(k) && v !== null && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  let text = line(summary);
  for (const block of evidenceOf(e)) {
    if (block?.trim()) text += block.replace(/\n+$/, '').replace(/^/gm, '    ') + '\n';
  }
  return text;
}

export function registerEventsCommand(program: Command): void {
  program
    .command('events <job>')
    .option('-f, --follow', 'keep printing new events until the job ends')
    .option('-k, --kind <kind...>', 'only these kinds (repeatable)')
    .option('--json', 'one JSON object per line')
    .action(async (job: string, opts: { follow?: boolean; kind?: string[]; json?: boolean }) => {
      const store = await openStore(loadConfig().storeUrl);
      try {
        const jobId = await resolveJobId(store, job);
        await untilInterrupted((signal) =>
          printEvents(store, jobId, {
            follow: opts.follow ?? false,
            kinds: opts.kind ?? [],
            json: opts.json ?? false,
            write: (t) => process.stdout.write(t),
            signal,
          }),
        );
      } finally {
        await store.close();
      }
    });
}
