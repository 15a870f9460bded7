// Node-check state: one row per job holding the pre-flight check's state machine
// (common/nodeCheckSession.ts) as JSON, written by compare-and-set on `version`, so API replicas
// can answer polls of the same check without sharing memory. Beside it, written with it, the
// short list of nodes that passed and the current round needs as peers, for heartbeats to read.
import type { NodeCheckState } from '../common/nodeCheckSession.ts';
import { fromJson, isDuplicateKey, Repository, toJson, type Trx } from './repository.ts';

export interface NodeCheckRecord {
  /** The job run's token digest: a new run under the same name starts a new check. */
  tokenDigest: string;
  /** 0 when no row exists yet; each write adds one. */
  version: number;
  state: NodeCheckState;
}

/** A state to write, with the `node/incarnation` of the partners it wants (partnersWanted). */
export interface NodeCheckWrite {
  tokenDigest: string;
  state: NodeCheckState;
  partnersWanted: string[];
}

export class NodeChecksRepository extends Repository {
  async get(jobId: string, trx?: Trx): Promise<NodeCheckRecord | undefined> {
    const row = await this.q(trx).selectFrom('nodeChecks').select(['tokenDigest', 'version', 'state']).where('jobId', '=', jobId).executeTakeFirst();
    return row && { tokenDigest: row.tokenDigest, version: row.version, state: fromJson(row.state) as NodeCheckState };
  }

  /** The partners the job's current round wants, and whose run's row it is; never reads the state. */
  async partnersWanted(jobId: string, trx?: Trx): Promise<{ tokenDigest: string; partners: string[] } | undefined> {
    const row = await this.q(trx).selectFrom('nodeChecks').select(['tokenDigest', 'partnersWanted']).where('jobId', '=', jobId).executeTakeFirst();
    return row && { tokenDigest: row.tokenDigest, partners: row.partnersWanted ? (fromJson(row.partnersWanted) as string[]) : [] };
  }

  /**
   * Writes `next` as version `expected + 1` if the row is still at `expected` (0: no row yet).
   * False when another writer got there first: reread and retry.
   */
  async compareAndSet(jobId: string, expected: number, next: NodeCheckWrite, trx?: Trx): Promise<boolean> {
    const values = {
      tokenDigest: next.tokenDigest,
      version: expected + 1,
      state: toJson(next.state),
      partnersWanted: next.partnersWanted.length > 0 ? toJson(next.partnersWanted) : null,
      updatedAt: this.now(),
    };
    if (expected === 0) {
      try {
        await this.q(trx).insertInto('nodeChecks').values({ jobId, ...values }).execute();
        return true;
      } catch (err) {
        if (isDuplicateKey(err)) return false;
        throw err;
      }
    }
    const result = await this.q(trx).updateTable('nodeChecks').set(values).where('jobId', '=', jobId).where('version', '=', expected).executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}
