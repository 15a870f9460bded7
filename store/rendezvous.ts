// Rendezvous: numbered rounds per job, and the nodes that joined each. A round is open while
// nodes join, then closed with ranks assigned (or failed).
import { isDuplicateKey, Repository, type Trx } from './repository.ts';
import type { RoundFailure } from '../common/failureCulprit.ts';
import type { RendezvousMemberRow, RendezvousRoundRow } from './schema.ts';

export type RendezvousRound = RendezvousRoundRow;
export type RendezvousMember = RendezvousMemberRow;

export const ROUND_OPEN = 'open';
export const ROUND_CLOSED = 'closed';
export const ROUND_FAILED = 'failed';

export interface RoundKey {
  jobId: string;
  round: number;
}

export interface NewRound extends RoundKey {
  minNodes: number;
  maxNodes: number;
}

export interface JoinRequest extends RoundKey {
  nodeId: number;
  incarnation: number;
  host: string;
  freePort?: number;
}

export interface CloseRound extends RoundKey {
  ranks: { nodeId: number; rank: number }[];
  masterAddr: string;
  masterPort: number;
}

export class RendezvousRepository extends Repository {
  /** Opens the round; if it exists already, returns it unchanged with created=false. */
  async openRound(input: NewRound, trx?: Trx): Promise<{ round: RendezvousRound; created: boolean }> {
    let created = true;
    try {
      await this.q(trx)
        .insertInto('rendezvousRounds')
        .values({
          jobId: input.jobId,
          round: input.round,
          minNodes: input.minNodes,
          maxNodes: input.maxNodes,
          status: ROUND_OPEN,
          openedAt: this.now(),
        })
        .execute();
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      created = false;
    }
    // A duplicate key means another transaction committed the row after this one's MySQL snapshot
    // (REPEATABLE READ) was taken: a plain read would not see it, a locking read reads the latest.
    const round = await this.getRound(input, trx, { lock: !created });
    if (!round) throw new Error(`rendezvous round ${input.jobId}#${input.round} vanished right after insert`);
    return { round, created };
  }

  /** The round's row. `lock`: on MySQL a locking read, which sees the latest commit whatever the transaction's snapshot. */
  async getRound(key: RoundKey, trx?: Trx, opts: { lock?: boolean } = {}): Promise<RendezvousRound | undefined> {
    return this.q(trx)
      .selectFrom('rendezvousRounds')
      .selectAll()
      .where('jobId', '=', key.jobId)
      .where('round', '=', key.round)
      .$if(this.dialect === 'mysql' && opts.lock === true, (qb) => qb.forUpdate())
      .executeTakeFirst();
  }

  /** The job's highest-numbered round. */
  async latestRound(jobId: string, trx?: Trx): Promise<RendezvousRound | undefined> {
    return this.q(trx)
      .selectFrom('rendezvousRounds')
      .selectAll()
      .where('jobId', '=', jobId)
      .orderBy('round', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  /**
   * Adds the node to an open round (a rejoin replaces its incarnation and host) and stamps the
   * round's lastJoinAt; a new member also counts in the round's memberCount, in the same
   * transaction. Undefined when the round does not exist or is no longer open.
   */
  async join(req: JoinRequest, trx?: Trx): Promise<RendezvousMember | undefined> {
    return this.inTransaction(trx, async (t) => {
      const open = await t
        .selectFrom('rendezvousRounds')
        .select('status')
        .where('jobId', '=', req.jobId)
        .where('round', '=', req.round)
        .where('status', '=', ROUND_OPEN)
        .$if(this.dialect === 'mysql', (qb) => qb.forUpdate())
        .executeTakeFirst();
      if (!open) return undefined;
      const now = this.now();
      const member: RendezvousMember = {
        jobId: req.jobId,
        round: req.round,
        nodeId: req.nodeId,
        incarnation: req.incarnation,
        host: req.host,
        freePort: req.freePort ?? null,
        joinedAt: now,
        rank: null,
      };
      let added = true;
      try {
        await t.insertInto('rendezvousMembers').values(member).execute();
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        added = false;
        await t
          .updateTable('rendezvousMembers')
          .set({ incarnation: req.incarnation, host: req.host, freePort: req.freePort ?? null, joinedAt: now, rank: null })
          .where('jobId', '=', req.jobId)
          .where('round', '=', req.round)
          .where('nodeId', '=', req.nodeId)
          .execute();
      }
      await t
        .updateTable('rendezvousRounds')
        .set((eb) => ({ lastJoinAt: now, ...(added && { memberCount: eb('memberCount', '+', 1) }) }))
        .where('jobId', '=', req.jobId)
        .where('round', '=', req.round)
        .execute();
      return member;
    });
  }

  /** Removes a node from the round (it died before the round closed); false if absent. */
  async leave(key: RoundKey, nodeId: number, trx?: Trx): Promise<boolean> {
    return this.inTransaction(trx, async (t) => {
      const result = await t
        .deleteFrom('rendezvousMembers')
        .where('jobId', '=', key.jobId)
        .where('round', '=', key.round)
        .where('nodeId', '=', nodeId)
        .executeTakeFirst();
      if (result.numDeletedRows === 0n) return false;
      await t
        .updateTable('rendezvousRounds')
        .set((eb) => ({ memberCount: eb('memberCount', '-', 1) }))
        .where('jobId', '=', key.jobId)
        .where('round', '=', key.round)
        .execute();
      return true;
    });
  }

  /**
   * The members of a round among `nodeIds` (nodes that never joined are absent), in one query:
   * what polls and heartbeats answered together need (api/agentService.ts), never the others.
   */
  async getMembers(key: RoundKey, nodeIds: number[], trx?: Trx): Promise<RendezvousMember[]> {
    if (nodeIds.length === 0) return [];
    return this.q(trx)
      .selectFrom('rendezvousMembers')
      .selectAll()
      .where('jobId', '=', key.jobId)
      .where('round', '=', key.round)
      .where('nodeId', 'in', [...new Set(nodeIds)])
      .execute();
  }

  /** Members in join order. O(members): for deciding or reporting a round, never per agent request. */
  async listMembers(key: RoundKey, trx?: Trx): Promise<RendezvousMember[]> {
    return this.q(trx)
      .selectFrom('rendezvousMembers')
      .selectAll()
      .where('jobId', '=', key.jobId)
      .where('round', '=', key.round)
      .orderBy('joinedAt')
      .orderBy('nodeId')
      .execute();
  }

  /**
   * Closes an open round: records the master address, the world of `ranks` and each member's
   * rank. False (and nothing written) when the round is missing or not open.
   */
  async closeRound(input: CloseRound, trx?: Trx): Promise<boolean> {
    return this.inTransaction(trx, async (t) => {
      const result = await t
        .updateTable('rendezvousRounds')
        .set({
          status: ROUND_CLOSED,
          closedAt: this.now(),
          masterAddr: input.masterAddr,
          masterPort: input.masterPort,
          nodeCount: input.ranks.length,
        })
        .where('jobId', '=', input.jobId)
        .where('round', '=', input.round)
        .where('status', '=', ROUND_OPEN)
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) return false;
      for (const { nodeId, rank } of input.ranks) {
        await t
          .updateTable('rendezvousMembers')
          .set({ rank })
          .where('jobId', '=', input.jobId)
          .where('round', '=', input.round)
          .where('nodeId', '=', nodeId)
          .execute();
      }
      return true;
    });
  }

  /** Resizes an open round (the job was rescaled while it waited); false if not open. */
  async setMaxNodes(key: RoundKey, maxNodes: number, trx?: Trx): Promise<boolean> {
    const result = await this.q(trx)
      .updateTable('rendezvousRounds')
      .set({ maxNodes })
      .where('jobId', '=', key.jobId)
      .where('round', '=', key.round)
      .where('status', '=', ROUND_OPEN)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** The round's culprit so far (null: no failure judged yet). */
  culprit(round: RendezvousRound): RoundFailure | null {
    const { culpritNode: node, culpritIncarnation: incarnation, culpritWeight: weight, culpritAt: at, culpritExitedAt: exitedAt } = round;
    return node === null || incarnation === null || weight === null || at === null ? null : { node, incarnation, weight, at, exitedAt };
  }

  /** Records the failure that explains the round's others (common/failureCulprit.ts judgeFailure). */
  async setCulprit(key: RoundKey, culprit: RoundFailure, trx?: Trx): Promise<void> {
    await this.q(trx)
      .updateTable('rendezvousRounds')
      .set({ culpritNode: culprit.node, culpritIncarnation: culprit.incarnation, culpritWeight: culprit.weight, culpritAt: culprit.at, culpritExitedAt: culprit.exitedAt })
      .where('jobId', '=', key.jobId)
      .where('round', '=', key.round)
      .execute();
  }

  /** Forgets every round and member of the job (a new run under the same name). */
  async deleteByJob(jobId: string, trx?: Trx): Promise<void> {
    await this.q(trx).deleteFrom('rendezvousMembers').where('jobId', '=', jobId).execute();
    await this.q(trx).deleteFrom('rendezvousRounds').where('jobId', '=', jobId).execute();
  }

  /** Marks an open round failed (e.g. too few nodes before the deadline); false if not open. */
  async failRound(key: RoundKey, trx?: Trx): Promise<boolean> {
    const result = await this.q(trx)
      .updateTable('rendezvousRounds')
      .set({ status: ROUND_FAILED, closedAt: this.now() })
      .where('jobId', '=', key.jobId)
      .where('round', '=', key.round)
      .where('status', '=', ROUND_OPEN)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}
