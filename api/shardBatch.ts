// One transaction for many trainers' shard requests of one job (the group commit of
// api/groupCommit.ts): done reports first, then leases, each caller answered on its own.
// Exactly-once rests on the store, not on the batch: the ledger row is read (share-locked on
// MySQL) once for the round check; leased shards are picked from the store (locked, skipping
// rows another replica holds) and granted by a compare-and-set per row; done reports count only
// where the row still names the caller as the lease holder.
import type { DoneRequest, DoneResponse, LeaseRequest, LeaseResponse } from '../common/trainerProtocol.ts';
import { leaseOwner, SHARD_LEASED, type Job, type ShardGrant, type TransactionScope } from '../store/index.ts';
import { HttpError } from './errors.ts';
import type { Settled } from './groupCommit.ts';

export type TrainerRef = { node: number; incarnation: number; rank: number; round: number };

export function stale(job: Job, ref: TrainerRef, current: number): HttpError {
  return new HttpError(409, 'stale_round', `job ${job.id} is in rendezvous round ${current}; rank ${ref.rank} of round ${ref.round} must restart`);
}

/** A lease whose caller must first move the ledger to its round (or create it): LedgerService.enterRound. */
export const ENTER_ROUND = 'enter_round';

export type ShardOp = { kind: 'lease'; job: Job; req: LeaseRequest } | { kind: 'done'; job: Job; req: DoneRequest };
export type ShardOpResult = LeaseResponse | DoneResponse | typeof ENTER_ROUND;

export interface ShardBatchResult {
  outcomes: Settled<ShardOpResult>[];
  /** The ledger's next unannounced epoch is settled now: announce it (LedgerService.announceEpochs). */
  epochSettled: boolean;
}

/** Shards of one batch: how many a request names (lease count or done list). */
export function opWeight(op: ShardOp): number {
  return op.kind === 'lease' ? op.req.count : op.req.shards.length;
}

const keyOf = (s: { epoch: number; shardIndex: number }) => `${s.epoch}/${s.shardIndex}`;

/**
 * Runs `ops` of job `jobId` in the caller's transaction `tx` at time `now`. Refusals of one
 * caller (a stale round) are that caller's outcome; a thrown error means the transaction must
 * roll back. Safe to run again from the start (MySQL deadlock reruns): it keeps no state outside.
 */
export async function runShardBatch(tx: TransactionScope, jobId: string, ops: ShardOp[], now: number): Promise<ShardBatchResult> {
  const ledger = await tx.shardLedgers.get(jobId, { lock: 'share' });
  const outcomes: Settled<ShardOpResult>[] = new Array(ops.length);
  const dones: { i: number; req: DoneRequest }[] = [];
  const leases: { i: number; job: Job; req: LeaseRequest }[] = [];
  ops.forEach((op, i) => {
    const round = ledger?.round ?? 0;
    if (op.kind === 'done') {
      if (!ledger || round !== op.req.round) outcomes[i] = { ok: false, error: stale(op.job, op.req, round) };
      else dones.push({ i, req: op.req });
    } else if (!ledger || ledger.tokenDigest !== op.job.tokenDigest || round < op.req.round) {
      outcomes[i] = { ok: true, value: ENTER_ROUND };
    } else if (round > op.req.round) {
      outcomes[i] = { ok: false, error: stale(op.job, op.req, round) };
    } else {
      leases.push({ i, job: op.job, req: op.req });
    }
  });
  if (dones.length > 0) {
    for (const { i, value } of await completeAll(tx, jobId, dones)) outcomes[i] = { ok: true, value };
  }
  let finished = false;
  if (leases.length > 0) {
    for (const { i, value } of await leaseAll(tx, jobId, leases, now, ledger!.resumeStep)) {
      outcomes[i] = { ok: true, value };
      finished ||= value.finished;
    }
  }
  // Done reports may settle the epoch; a finished dataset retries an announcement that failed.
  const epochSettled = (dones.length > 0 || finished) && (await tx.shards.epochSettled(jobId, ledger!.epochsDone));
  return { outcomes, epochSettled };
}

/**
 * Counts each reported shard whose row names the reporter as its lease holder (read locked), once
 * even when reported twice in the batch, and marks them done by compare-and-set.
 */
async function completeAll(tx: TransactionScope, jobId: string, dones: { i: number; req: DoneRequest }[]) {
  const keys = new Map(dones.flatMap(({ req }) => req.shards.map((s) => [keyOf(s), s] as const)));
  const holders = new Map((await tx.shards.holders(jobId, [...keys.values()])).map((h) => [keyOf(h), h]));
  const claimed = new Set<string>();
  const completions = [];
  const answers = [];
  for (const { i, req } of dones) {
    const owner = leaseOwner(req);
    const ignored: DoneResponse['ignored'] = [];
    let counted = 0;
    for (const s of req.shards) {
      const holder = holders.get(keyOf(s));
      if (holder?.status === SHARD_LEASED && holder.leaseOwner === owner && !claimed.has(keyOf(s))) {
        claimed.add(keyOf(s));
        completions.push({ epoch: s.epoch, shardIndex: s.shardIndex, owner, step: req.step });
        counted += 1;
      } else {
        ignored.push(s);
      }
    }
    answers.push({ i, value: { counted, ignored } satisfies DoneResponse });
  }
  const marked = await tx.shards.completeMany(jobId, completions);
  if (marked !== completions.length) throw new Error(`shards of job ${jobId} changed while locked: ${marked} of ${completions.length} marked done`);
  return answers;
}

/**
 * Fills each lease request in arrival order from the lowest leasable shards. A shard leased more
 * than maxRetries + 1 times is taken out (poison or skipped, per spec.dataset.onPoison) and its
 * event names the trainer that drew it; that trainer gets the next shard instead.
 */
async function leaseAll(
  tx: TransactionScope,
  jobId: string,
  leases: { i: number; job: Job; req: LeaseRequest }[],
  now: number,
  resumeStep: number,
) {
  // Every request passed the ledger's token check: one run of the job, one dataset spec.
  const dataset = leases[0]!.job.spec.spec.dataset!;
  const maxAttempts = dataset.maxRetries + 1;
  const leaseExpiresAt = now + dataset.leaseTimeout;
  const wants = leases.map(({ i, req }) => ({ i, req, owner: leaseOwner(req), shards: [] as LeaseResponse['shards'] }));
  for (let w = 0; ; ) {
    const need = wants.reduce((n, want) => n + want.req.count - want.shards.length, 0);
    if (need === 0) break;
    const picked = await tx.shards.pickLeasable(jobId, need, now);
    const grants: ShardGrant[] = [];
    const poisoned = [];
    for (const s of picked) {
      while (wants[w]!.shards.length >= wants[w]!.req.count) w += 1;
      const want = wants[w]!;
      grants.push({ epoch: s.epoch, shardIndex: s.shardIndex, owner: want.owner });
      // The grant counts an attempt: a shard past its last allowed attempt is poison.
      if (s.attempts + 1 <= maxAttempts) {
        want.shards.push({ epoch: s.epoch, shardIndex: s.shardIndex, startIndex: s.startIndex, endIndex: s.endIndex, attempts: s.attempts + 1 });
      } else {
        poisoned.push({ s, req: want.req });
      }
    }
    const granted = await tx.shards.grantLeases(jobId, grants, now, leaseExpiresAt);
    if (granted !== grants.length) throw new Error(`shards of job ${jobId} changed while locked: leased ${granted} of ${grants.length}`);
    for (const { s, req } of poisoned) {
      const key = { jobId, epoch: s.epoch, shardIndex: s.shardIndex };
      const policy = dataset.onPoison;
      if (policy === 'skip') await tx.shards.markSkipped(key);
      else await tx.shards.markPoison(key);
      await tx.nodeEvents.append({
        jobId,
        nodeId: req.node,
        incarnation: req.incarnation,
        kind: 'shard_poisoned',
        data: { epoch: s.epoch, shardIndex: s.shardIndex, attempts: s.attempts, policy },
      });
    }
    if (picked.length < need) break; // nothing more to lease now
  }
  let finished: boolean | undefined;
  const answers = [];
  for (const { i, shards } of wants) {
    if (shards.length === 0) finished ??= !(await tx.shards.hasOpen(jobId));
    answers.push({ i, value: { shards, finished: shards.length === 0 && finished === true, leaseExpiresAt, resumeStep } satisfies LeaseResponse });
  }
  return answers;
}
