// Node events: the append-only log watchNodes tails with a cursor (the last id it has seen).
import { fromJson, Repository, toJson, toNumber, type Trx } from './repository.ts';
import { defaultEventSource, eventDataProblem, type EventDataInput, type EventSource, type NodeEventKind } from '../common/events.ts';
import type { NodeEventRow } from './schema.ts';

export interface NodeEvent extends Omit<NodeEventRow, 'data'> {
  data: unknown;
}

/**
 * An event to append: its data is what its kind's schema (common/events.ts EVENT_DATA) describes.
 * Typed per kind where the kind is a literal; append checks the pair at run time either way.
 */
export interface NewNodeEvent<K extends NodeEventKind = NodeEventKind> {
  jobId: string;
  nodeId?: number | null;
  incarnation?: number | null;
  kind: K;
  data: EventDataInput<K>;
  /** Who emitted it; default by kind (common/events.ts). */
  source?: EventSource;
  rank?: number | null;
}

function toEvent(row: NodeEventRow): NodeEvent {
  return { ...row, data: fromJson(row.data) };
}

export class NodeEventsRepository extends Repository {
  /** Forgets the job's events (a new run under the same name; its cursor starts again at 0). */
  async deleteByJob(jobId: string, trx?: Trx): Promise<void> {
    await this.q(trx).deleteFrom('nodeEvents').where('jobId', '=', jobId).execute();
  }

  /**
   * Appends one event and returns it with its id.
   *
   * A reader that skips past an id must never see a smaller one appear later. SQLite has one
   * writer at a time, so ids commit in order. MySQL hands out auto-increment ids at insert
   * time, and transactions may commit out of that order; so appends for a job first lock the
   * job's row, which makes them take ids and commit one after another. (Events of a job that
   * has no row in `jobs` get no such lock.)
   *
   * The one way onto the bus: data its kind's schema refuses, or with a field the schema lacks,
   * is a writer's bug and throws before anything is written.
   */
  async append<K extends NodeEventKind>(event: NewNodeEvent<K>, trx?: Trx): Promise<NodeEvent> {
    const problem = eventDataProblem(event.kind, event.data);
    if (problem !== undefined) throw new Error(`a ${event.kind} event of job ${event.jobId} with data the schema refuses (common/events.ts): ${problem}`);
    return this.inTransaction(trx, async (t) => {
      if (this.dialect === 'mysql') {
        await t.selectFrom('jobs').select('id').where('id', '=', event.jobId).forUpdate().execute();
      }
      const row = {
        jobId: event.jobId,
        nodeId: event.nodeId ?? null,
        incarnation: event.incarnation ?? null,
        kind: event.kind,
        data: toJson(event.data),
        createdAt: this.now(),
        source: event.source ?? defaultEventSource(event.kind),
        rank: event.rank ?? null,
      };
      const result = await t.insertInto('nodeEvents').values(row).executeTakeFirstOrThrow();
      if (result.insertId === undefined) throw new Error('the database returned no id for the appended node event');
      return toEvent({ ...row, id: Number(result.insertId) });
    });
  }

  /** Up to `limit` events of the job with id > cursor, oldest first. Start with cursor 0. */
  async listAfter(jobId: string, cursor: number, limit: number, trx?: Trx): Promise<NodeEvent[]> {
    const rows = await this.q(trx)
      .selectFrom('nodeEvents')
      .selectAll()
      .where('jobId', '=', jobId)
      .where('id', '>', cursor)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toEvent);
  }

  /** Events of the job after `after`, oldest first, optionally only some kinds: the event bus view. */
  async list(jobId: string, opts: { after?: number; kinds?: string[]; limit?: number; newestFirst?: boolean } = {}, trx?: Trx): Promise<NodeEvent[]> {
    let query = this.q(trx)
      .selectFrom('nodeEvents')
      .selectAll()
      .where('jobId', '=', jobId)
      .where('id', '>', opts.after ?? 0);
    if (opts.kinds && opts.kinds.length > 0) query = query.where('kind', 'in', opts.kinds);
    const rows = await query.orderBy('id', opts.newestFirst ? 'desc' : 'asc').limit(opts.limit ?? 1000).execute();
    return rows.map(toEvent);
  }

  /** The id of the job's newest event, or 0 when it has none: a cursor that skips history. */
  async latestId(jobId: string, trx?: Trx): Promise<number> {
    const row = await this.q(trx)
      .selectFrom('nodeEvents')
      .select((eb) => eb.fn.max('id').as('maxId'))
      .where('jobId', '=', jobId)
      .executeTakeFirst();
    return toNumber(row?.maxId);
  }
}
