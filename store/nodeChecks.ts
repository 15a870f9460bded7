// Node-check state: one row per job holding the pre-flight check's state machine
// (common/nodeCheckSession.ts) as JSON, written by compare-and-set on `version`, so API replicas
// can answer polls of the same check without sharing memory.
import type { NodeCheckState } from '../common/nodeCheckSession.ts';
import { fromJson, isDuplicateKey, Repository, toJson, type Trx } from './repository.ts';

export interface NodeCheckRecord {
  /** The job run's token digest: a new run under the same name starts a new check. */
  tokenDigest: string;
  /** 0 when no row exists yet; each write adds one. */
  version: number;
  state: NodeCheckState;
}

export class NodeChecksRepository extends Repository {
  async get(jobId: string, trx?: Trx): Promise<NodeCheckRecord | undefined> {
    const row = await this.q(trx).selectFrom('nodeChecks').select(['tokenDigest', 'version', 'state']).where('jobId', '=', jobId).executeTakeFirst();
    return row && { tokenDigest: row.tokenDigest, version: row.version, state: fromJson(row.state) as NodeCheckState };
  }

  /**
   * Writes `next` as version `expected + 1` if the row is still at `expected` (0: no row yet).
   * False when another writer got there first: reread and retry.
   */
  async compareAndSet(jobId: string, expected: number, next: Omit<NodeCheckRecord, 'version'>, trx?: Trx): Promise<boolean> {
    const values = { tokenDigest: next.tokenDigest, version: expected + 1, state: toJson(next.state), updatedAt: this.now() };
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
