// Nodes: one row per (job, node, incarnation). A relaunched node is a new incarnation, so the
// history of every attempt stays queryable.
import { sql } from 'kysely';
import { fromJson, isDuplicateKey, Repository, toJson, toNumber, type Trx } from './repository.ts';
import type { NodeRow } from './schema.ts';

/** One heartbeat's write (NodesRepository.recordBeats): null fields keep what is stored. */
export interface BeatWrite {
  nodeId: number;
  incarnation: number;
  step: number | null;
  stepAt: number | null;
  checkpointing: number | null;
  computeWindow: number[] | null;
}

/** Beats per statement: SQLite allows 500 terms in a compound SELECT; a power of two below it. */
const BEAT_CHUNK = 256;
/** A padding row: no node has id -1. */
const NO_BEAT: BeatWrite = { nodeId: -1, incarnation: -1, step: null, stepAt: null, checkpointing: null, computeWindow: null };

export interface NodeKey {
  jobId: string;
  nodeId: number;
  incarnation: number;
}

export interface Node extends Omit<NodeRow, 'resources' | 'computeWindow'> {
  resources: unknown;
  /** The trainers' compute seconds of the latest steps, oldest first (api/stragglerWatch.ts). */
  computeWindow: number[];
}

export interface NewNode extends NodeKey {
  backend: string;
  status: string;
  rank?: number | null;
  resources?: unknown;
}

export interface NodePatch {
  status?: string;
  rank?: number | null;
  pid?: number | null;
  host?: string | null;
  logPath?: string | null;
  exitCode?: number | null;
  exitSignal?: string | null;
  exitReason?: string | null;
  processRestarts?: number;
  step?: number | null;
  lastHeartbeatAt?: number | null;
  startedAt?: number | null;
  endedAt?: number | null;
  resources?: unknown;
  pendingReason?: string | null;
}

function toNode(row: NodeRow): Node {
  return {
    ...row,
    resources: row.resources === null ? null : fromJson(row.resources),
    computeWindow: row.computeWindow === null ? [] : (fromJson(row.computeWindow) as number[]),
  };
}

export class NodesRepository extends Repository {
  /**
   * Records a launch of (job, node, incarnation). A retried launch with the same key changes
   * nothing and returns the stored row with created=false.
   */
  async upsertLaunch(input: NewNode, trx?: Trx): Promise<{ node: Node; created: boolean }> {
    let created = true;
    try {
      await this.q(trx)
        .insertInto('nodes')
        .values({
          jobId: input.jobId,
          nodeId: input.nodeId,
          incarnation: input.incarnation,
          backend: input.backend,
          status: input.status,
          rank: input.rank ?? null,
          resources: input.resources === undefined ? null : toJson(input.resources),
          createdAt: this.now(),
        })
        .execute();
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      created = false;
    }
    const node = await this.get(input, trx);
    if (!node) throw new Error(`node ${input.jobId}/${input.nodeId}#${input.incarnation} vanished right after insert`);
    return { node, created };
  }

  async get(key: NodeKey, trx?: Trx): Promise<Node | undefined> {
    const row = await this.q(trx)
      .selectFrom('nodes')
      .selectAll()
      .where('jobId', '=', key.jobId)
      .where('nodeId', '=', key.nodeId)
      .where('incarnation', '=', key.incarnation)
      .executeTakeFirst();
    return row && toNode(row);
  }

  /**
   * The named incarnations of one job's nodes, in one read: the rows of those node ids, the other
   * incarnations left out. Missing ones are absent. A group commit's batch reads its nodes this way.
   */
  async getMany(jobId: string, keys: Omit<NodeKey, 'jobId'>[], trx?: Trx): Promise<Node[]> {
    if (keys.length === 0) return [];
    const wanted = new Set(keys.map((k) => `${k.nodeId}/${k.incarnation}`));
    const rows = await this.q(trx)
      .selectFrom('nodes')
      .selectAll()
      .where('jobId', '=', jobId)
      .where('nodeId', 'in', [...new Set(keys.map((k) => k.nodeId))])
      .execute();
    return rows.filter((r) => wanted.has(`${r.nodeId}/${r.incarnation}`)).map(toNode);
  }

  /**
   * Writes a batch of one job's heartbeats: `last_heartbeat_at = at` for each named node
   * incarnation, and each field a beat sets (null keeps the stored value). One statement per
   * BEAT_CHUNK beats instead of one per node: on MySQL each statement is a round trip made with
   * the batch's row locks held, which held a job to about one heartbeat per round trip
   * (agentScale). Chunks are padded to a power of two with rows that name no node, so the store
   * sees a handful of statement texts (SQLite keeps compiled statements by text; MySQL prepares
   * each new text). Returns the rows written.
   */
  async recordBeats(jobId: string, at: number, beats: BeatWrite[], trx?: Trx): Promise<number> {
    let written = 0;
    for (let from = 0; from < beats.length; from += BEAT_CHUNK) {
      const chunk = beats.slice(from, from + BEAT_CHUNK);
      const padded = [...chunk, ...Array.from({ length: 2 ** Math.ceil(Math.log2(chunk.length)) - chunk.length }, () => NO_BEAT)];
      const rows = sql.join(
        padded.map((b) => {
          const window = b.computeWindow === null ? null : toJson(b.computeWindow);
          return sql`select ${b.nodeId} as node_id, ${b.incarnation} as incarnation, ${b.step} as step, ${b.stepAt} as step_at, ${b.checkpointing} as checkpointing, ${window} as compute_window`;
        }),
        sql` union all `,
      );
      // The same assignments in both dialects; MySQL names the updated table's columns with its
      // alias (b has columns of the same names), SQLite's SET takes bare names. MySQL reads the
      // batch first (straight_join) and finds each node by its primary key; joined the other way
      // it scanned the job's every node.
      const set = (target: string) => {
        const [col, n] = target === 'n' ? ['n.', sql.raw('n')] : ['', sql.raw('nodes')];
        const c = (name: string) => sql.raw(col + name);
        return sql`${c('last_heartbeat_at')} = ${at}, ${c('step')} = coalesce(b.step, ${n}.step), ${c('step_at')} = coalesce(b.step_at, ${n}.step_at), ${c('checkpointing')} = coalesce(b.checkpointing, ${n}.checkpointing), ${c('compute_window')} = coalesce(b.compute_window, ${n}.compute_window)`;
      };
      const statement =
        this.dialect === 'mysql'
          ? sql`update (${rows}) as b straight_join nodes as n on n.node_id = b.node_id and n.incarnation = b.incarnation set ${set('n')} where n.job_id = ${jobId}`
          : sql`update nodes set ${set('nodes')} from (${rows}) as b where nodes.job_id = ${jobId} and nodes.node_id = b.node_id and nodes.incarnation = b.incarnation`;
      const result = await statement.execute(this.q(trx));
      written += Number(result.numAffectedRows ?? 0n);
    }
    return written;
  }

  /** The node's highest incarnation, or undefined if it was never launched. */
  async latest(jobId: string, nodeId: number, trx?: Trx): Promise<Node | undefined> {
    const row = await this.q(trx)
      .selectFrom('nodes')
      .selectAll()
      .where('jobId', '=', jobId)
      .where('nodeId', '=', nodeId)
      .orderBy('incarnation', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && toNode(row);
  }

  /** Every incarnation of every node of the job, by node id then incarnation. */
  async listByJob(jobId: string, opts: { statuses?: string[] } = {}, trx?: Trx): Promise<Node[]> {
    if (opts.statuses?.length === 0) return [];
    const rows = await this.q(trx)
      .selectFrom('nodes')
      .selectAll()
      .where('jobId', '=', jobId)
      .$if(opts.statuses !== undefined, (qb) => qb.where('status', 'in', opts.statuses ?? []))
      .orderBy('nodeId')
      .orderBy('incarnation')
      .execute();
    return rows.map(toNode);
  }

  /** Applies the patch; false when no such node. */
  async update(key: NodeKey, patch: NodePatch, trx?: Trx): Promise<boolean> {
    const { resources, ...rest } = patch;
    const values = {
      ...rest,
      ...(resources !== undefined ? { resources: resources === null ? null : toJson(resources) } : {}),
    };
    if (Object.values(values).every((v) => v === undefined)) return (await this.get(key, trx)) !== undefined;
    const result = await this.q(trx)
      .updateTable('nodes')
      .set(values)
      .where('jobId', '=', key.jobId)
      .where('nodeId', '=', key.nodeId)
      .where('incarnation', '=', key.incarnation)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /**
   * Charges (+1) or refunds (-1) one process failure to the node's restart budget; returns the
   * new count, or undefined when the node does not exist. Never below 0.
   */
  async chargeProcessRestart(key: NodeKey, delta: 1 | -1, trx?: Trx): Promise<number | undefined> {
    return this.inTransaction(trx, async (t) => {
      await t
        .updateTable('nodes')
        .set((eb) => ({ processRestarts: delta > 0 ? eb('processRestarts', '+', 1) : eb('processRestarts', '-', 1) }))
        .$if(delta < 0, (qb) => qb.where('processRestarts', '>', 0))
        .where('jobId', '=', key.jobId)
        .where('nodeId', '=', key.nodeId)
        .where('incarnation', '=', key.incarnation)
        .execute();
      return (await this.get(key, t))?.processRestarts;
    });
  }

  /** Marks the incarnation a straggler at `now`, once: false when it already was (or is gone). */
  async markStraggler(key: NodeKey, now: number, trx?: Trx): Promise<boolean> {
    const result = await this.q(trx)
      .updateTable('nodes')
      .set({ stragglerAt: now })
      .where('jobId', '=', key.jobId)
      .where('nodeId', '=', key.nodeId)
      .where('incarnation', '=', key.incarnation)
      .where('stragglerAt', 'is', null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Nodes of every job on `backend` in one of `statuses` (e.g. all live local nodes). */
  async listByBackend(backend: string, statuses: string[], trx?: Trx): Promise<Node[]> {
    if (statuses.length === 0) return [];
    const rows = await this.q(trx)
      .selectFrom('nodes')
      .selectAll()
      .where('backend', '=', backend)
      .where('status', 'in', statuses)
      .orderBy('jobId')
      .orderBy('nodeId')
      .execute();
    return rows.map(toNode);
  }

  /** Forgets every node of the job (a new run under the same name). */
  async deleteByJob(jobId: string, trx?: Trx): Promise<void> {
    await this.q(trx).deleteFrom('nodes').where('jobId', '=', jobId).execute();
  }

  /**
   * The job's running nodes in aggregate, one row whatever their number: how many, the latest
   * step any made and when (ms, null: none yet), and whether any is saving a checkpoint. What the
   * hang judgement needs (api/hangWatch.ts), without carrying every row into the API.
   */
  async runningSummary(jobId: string, trx?: Trx): Promise<{ count: number; lastStepAt: number | null; step: number | null; checkpointing: boolean }> {
    const row = await this.q(trx)
      .selectFrom('nodes')
      .select((eb) => [eb.fn.countAll().as('count'), eb.fn.max('stepAt').as('lastStepAt'), eb.fn.max('step').as('step'), eb.fn.max('checkpointing').as('checkpointing')])
      .where('jobId', '=', jobId)
      .where('status', '=', 'running')
      .executeTakeFirst();
    const orNull = (v: unknown) => (v === null || v === undefined ? null : toNumber(v));
    return { count: toNumber(row?.count ?? 0), lastStepAt: orNull(row?.lastStepAt), step: orNull(row?.step), checkpointing: orNull(row?.checkpointing) === 1 };
  }

  /**
   * Nodes in one of `statuses` whose last sign of life (heartbeat, else start, else creation)
   * is older than `cutoff` ms: candidates for "heartbeat lost".
   */
  async listSilentSince(jobId: string, cutoff: number, statuses: string[], trx?: Trx): Promise<Node[]> {
    if (statuses.length === 0) return [];
    const rows = await this.q(trx)
      .selectFrom('nodes')
      .selectAll()
      .where('jobId', '=', jobId)
      .where('status', 'in', statuses)
      .where((eb) => eb(eb.fn.coalesce('lastHeartbeatAt', 'startedAt', 'createdAt'), '<', cutoff))
      .orderBy('nodeId')
      .orderBy('incarnation')
      .execute();
    return rows.map(toNode);
  }
}
