// Metrics: numeric samples (step time, throughput, memory, …) per job and node, kept for a
// retention window and read back by name for the Brain's optimizers and `rover status`.
import { fromJson, Repository, toJson, type Trx } from './repository.ts';
import type { MetricRow } from './schema.ts';

export interface Metric extends Omit<MetricRow, 'labels'> {
  labels: Record<string, string>;
}

export interface NewMetric {
  jobId: string;
  nodeId?: number | null;
  incarnation?: number | null;
  name: string;
  value: number;
  labels?: Record<string, string>;
  /** When the sample was taken; default now. */
  createdAt?: number;
}

export interface MetricQuery {
  /** Only samples taken at or after this time (ms). */
  since?: number;
  nodeId?: number;
  /** Oldest first; default 1000. */
  limit?: number;
}

/** Rows per INSERT; keeps MySQL well under its placeholder limit. */
const INSERT_CHUNK = 500;

function toMetric(row: MetricRow): Metric {
  return { ...row, labels: fromJson(row.labels) as Record<string, string> };
}

export class MetricsRepository extends Repository {
  async record(samples: NewMetric[], trx?: Trx): Promise<void> {
    if (samples.length === 0) return;
    const now = this.now();
    const rows = samples.map((s) => ({
      jobId: s.jobId,
      nodeId: s.nodeId ?? null,
      incarnation: s.incarnation ?? null,
      name: s.name,
      value: s.value,
      labels: toJson(s.labels ?? {}),
      createdAt: s.createdAt ?? now,
    }));
    // One INSERT is atomic on its own: a heartbeat's few samples need no transaction around it
    // (BEGIN and COMMIT were two more statements per heartbeat, two more round trips on MySQL).
    if (rows.length <= INSERT_CHUNK) {
      await this.q(trx).insertInto('metrics').values(rows).execute();
      return;
    }
    await this.inTransaction(trx, async (t) => {
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        await t.insertInto('metrics').values(rows.slice(i, i + INSERT_CHUNK)).execute();
      }
    });
  }

  /** The job's samples of one metric, oldest first. */
  async list(jobId: string, name: string, query: MetricQuery = {}, trx?: Trx): Promise<Metric[]> {
    const rows = await this.q(trx)
      .selectFrom('metrics')
      .selectAll()
      .where('jobId', '=', jobId)
      .where('name', '=', name)
      .$if(query.since !== undefined, (qb) => qb.where('createdAt', '>=', query.since ?? 0))
      .$if(query.nodeId !== undefined, (qb) => qb.where('nodeId', '=', query.nodeId ?? 0))
      .orderBy('createdAt')
      .orderBy('id')
      .limit(query.limit ?? 1000)
      .execute();
    return rows.map(toMetric);
  }

  /** A new run under a finished job's name: the old run's samples go (its summary kept its peaks). */
  async deleteByJob(jobId: string, trx?: Trx): Promise<void> {
    await this.q(trx).deleteFrom('metrics').where('jobId', '=', jobId).execute();
  }

  /** Retention: deletes every sample taken before `cutoff` (ms since epoch); returns how many. */
  async deleteOlderThan(cutoff: number, trx?: Trx): Promise<number> {
    const result = await this.q(trx).deleteFrom('metrics').where('createdAt', '<', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
