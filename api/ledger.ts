// The trainer-facing service: the shard ledger (lease, done, give back) and the checkpoint
// commit protocol, over the store. One ledger row per job serialises rewinds: the first trainer
// of a new rendezvous round rewinds the shards to the latest committed checkpoint, so the round
// replays exactly the data after it; requests from older rounds are refused as stale. Lease and
// done requests of a job are group-committed: those that arrive together share one transaction.
// A commit applies the retention rule (common/checkpointRetention.ts) and a rewind drops partial
// steps; either records the files as doomed in the transaction that forgets their reports, and an
// agent of the job, which sees the files, deletes them (api/checkpointDeletions.ts,
// agent/checkpointDeletion.ts). No file is touched here: the API process may not see the
// checkpoint folder at all.
import { planEpoch } from '../common/shardPlan.ts';
import type {
  CheckpointReportWire,
  DoneRequest,
  DoneResponse,
  GiveBackRequest,
  LatestCheckpoint,
  LeaseRequest,
  LeaseResponse,
  RestoreReport,
  StepReport,
} from '../common/trainerProtocol.ts';
import { isLockConflict, leaseOwner, type Job, type ShardLedger, type Store, type TransactionScope } from '../store/index.ts';
import { checkCheckpointPath } from '../common/checkpointPaths.ts';
import { checkpointRetention } from '../common/checkpointRetention.ts';
import { HttpError } from './errors.ts';
import { GroupCommit } from './groupCommit.ts';
import { ENTER_ROUND, opWeight, runShardBatch, stale, type ShardOp, type ShardOpResult, type TrainerRef } from './shardBatch.ts';

/**
 * Shards one group-commit batch may name (leases asked plus done reports); a single larger
 * request (at most 1,024 by the protocol) still runs, alone.
 */
const BATCH_MAX_SHARDS = 2048;

/** Epochs, from the first, whose every shard is settled (done, poisoned or skipped). */
async function settledEpochs(tx: TransactionScope, jobId: string): Promise<number> {
  const { epochs } = await tx.shards.progress(jobId);
  let n = 0;
  for (const e of epochs) {
    if (e.queued + e.inFlight > 0) break;
    n += 1;
  }
  return n;
}

export class LedgerService {
  /**
   * Lease and done requests of one job that arrive while its transaction runs go together into
   * the next one (api/groupCommit.ts, api/shardBatch.ts): one transaction per round trip of the
   * store, however many trainers ask at once.
   */
  private readonly batches = new GroupCommit<ShardOp, ShardOpResult>((jobId, ops) => this.runBatch(jobId, ops), {
    maxWeight: BATCH_MAX_SHARDS,
    weight: opWeight,
  });

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
  ) {}

  /** A store transaction, run again when MySQL picks it as a deadlock victim under contention. */
  private async tx<T>(fn: (tx: TransactionScope) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.store.transaction(fn);
      } catch (err) {
        if (!isLockConflict(err) || attempt >= 20) throw err;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * (attempt + 1)));
      }
    }
  }

  /** The job's ledger, created with every epoch's shards on first use. */
  private async ensure(job: Job): Promise<ShardLedger> {
    const existing = await this.store.shardLedgers.get(job.id);
    if (existing && existing.tokenDigest === job.tokenDigest) return existing;
    const dataset = job.spec.spec.dataset;
    await this.tx(async (tx) => {
      const ledger = await tx.shardLedgers.get(job.id, { lock: 'update' });
      if (ledger?.tokenDigest === job.tokenDigest) return;
      // A reused job name's previous ledger is gone: prepareJob reset the job (store resetJob).
      if (!(await tx.shardLedgers.create(job.id, job.tokenDigest))) return;
      for (let epoch = 0; dataset && epoch < dataset.epochs; epoch++) {
        await tx.shards.createEpoch(job.id, epoch, planEpoch(dataset, epoch));
      }
    });
    return (await this.store.shardLedgers.get(job.id))!;
  }

  /**
   * Moves the ledger to `round` once: requeues every lease and every shard done after the
   * latest committed step, and forgets checkpoint reports that never committed. Returns the
   * step the round resumes from.
   */
  async enterRound(job: Job, ref: TrainerRef): Promise<number> {
    const ledger = await this.ensure(job);
    if (ledger.round === ref.round) return ledger.resumeStep;
    if (ledger.round > ref.round) throw stale(job, ref, ledger.round);
    return this.tx(async (tx) => {
      const l = (await tx.shardLedgers.get(job.id, { lock: 'update' }))!;
      if (l.round > ref.round) throw stale(job, ref, l.round);
      if (l.round === ref.round) return l.resumeStep;
      const latestRound = await tx.rendezvous.latestRound(job.id);
      if (!latestRound || latestRound.round < ref.round) {
        throw new HttpError(409, 'unknown_round', `job ${job.id} has no rendezvous round ${ref.round} yet`);
      }
      const resume = (await tx.checkpoints.latestCommit(job.id))?.step ?? 0;
      const requeued = await tx.shards.rewind(job.id, resume);
      // Steps that never committed can never be resumed from: their files are doomed.
      const partial = await tx.checkpoints.listUncommittedBelow(job.id, Number.MAX_SAFE_INTEGER);
      await tx.checkpoints.doom(job.id, partial);
      await tx.checkpoints.deleteSteps(job.id, [...new Set(partial.map((c) => c.step))]);
      await tx.shardLedgers.setRound(job.id, ref.round, resume, await settledEpochs(tx, job.id));
      await tx.nodeEvents.append({ jobId: job.id, kind: 'ledger_rewound', data: { round: ref.round, step: resume, requeued } });
      return resume;
    });
  }

  async lease(job: Job, req: LeaseRequest): Promise<LeaseResponse> {
    if (!job.spec.spec.dataset) throw new HttpError(409, 'no_dataset', `job ${job.id} has no spec.dataset to lease shards from`);
    // A request of a round the ledger has not entered (or of a new run) enters it, then leases;
    // after that the ledger is at its round or past it (then the batch answers stale_round).
    for (let tries = 0; ; tries++) {
      const outcome = await this.batches.submit(job.id, { kind: 'lease', job, req });
      if (outcome !== ENTER_ROUND) return outcome as LeaseResponse;
      if (tries >= 3) throw new HttpError(503, 'ledger_busy', `job ${job.id}: the shard ledger keeps moving; retry`);
      await this.enterRound(job, req);
    }
  }

  async done(job: Job, req: DoneRequest): Promise<DoneResponse> {
    return (await this.batches.submit(job.id, { kind: 'done', job, req })) as DoneResponse;
  }

  /**
   * One group-commit batch of a job: one contended transaction (MySQL: READ COMMITTED, rerun as
   * a whole when chosen as a deadlock victim), then the epoch announcement it found due. The
   * announcement is its own compare-and-set transaction after the commit; should it fail, the
   * next done batch finds the epoch still settled and unannounced and tries again.
   */
  private async runBatch(jobId: string, ops: ShardOp[]) {
    const { outcomes, epochSettled } = await this.store.contendedTransaction((tx) => runShardBatch(tx, jobId, ops, this.now()));
    if (epochSettled) await this.announceEpochs(jobId).catch(() => undefined);
    return outcomes;
  }

  /** Appends epoch_done for each newly settled epoch, once each (compare-and-set on the ledger). */
  private async announceEpochs(jobId: string): Promise<void> {
    for (;;) {
      const announced = await this.tx(async (tx) => {
        const ledger = await tx.shardLedgers.get(jobId);
        if (!ledger || !(await tx.shards.epochSettled(jobId, ledger.epochsDone))) return false;
        if (!(await tx.shardLedgers.advanceEpochsDone(jobId, ledger.epochsDone))) return false;
        await tx.nodeEvents.append({ jobId, kind: 'epoch_done', data: { epoch: ledger.epochsDone } });
        return true;
      });
      if (!announced) return;
    }
  }

  async giveBack(job: Job, req: GiveBackRequest): Promise<number> {
    const owner = leaseOwner(req);
    return this.tx(async (tx) => {
      let returned = 0;
      for (const s of req.shards) if (await tx.shards.giveBack({ jobId: job.id, ...s }, owner)) returned += 1;
      return returned;
    });
  }

  async progress(job: Job) {
    await this.ensure(job);
    return this.store.shards.progress(job.id);
  }

  async reportStep(job: Job, req: StepReport): Promise<void> {
    const labels = { rank: String(req.rank) };
    const base = { jobId: job.id, nodeId: req.node, incarnation: req.incarnation, labels };
    await this.store.metrics.record([
      { ...base, name: 'step', value: req.step },
      ...Object.entries(req.metrics).map(([name, value]) => ({ ...base, name, value })),
    ]);
  }

  /** A rank's resume from a committed step, as a checkpoint_restored event: one append, no read. */
  async reportRestore(job: Job, req: RestoreReport): Promise<void> {
    await this.store.nodeEvents.append({
      jobId: job.id,
      nodeId: req.node,
      incarnation: req.incarnation,
      rank: req.rank,
      source: 'trainer',
      kind: 'checkpoint_restored',
      data: { step: req.step, source: req.source, round: req.round, ...(req.seconds !== undefined && { seconds: req.seconds }) },
    });
  }

  /** Where a trainer of `round` resumes: the latest committed step and every rank's file. */
  async latest(job: Job, ref: TrainerRef | undefined): Promise<LatestCheckpoint> {
    const step = ref ? await this.enterRound(job, ref) : ((await this.store.checkpoints.latestCommit(job.id))?.step ?? 0);
    if (step === 0) return { step: 0, ranks: [] };
    const ranks = await this.store.checkpoints.listForStep(job.id, step);
    return { step, ranks: ranks.map((r) => ({ rank: r.rank, path: r.path, bytes: r.bytes, checksum: r.checksum })) };
  }

  /**
   * Records a rank's checkpoint. When every rank of the round's world has reported the step,
   * commits it (once, with the ledger position) and dooms what common/checkpointRetention.ts
   * drops (an agent deletes the files).
   */
  async reportCheckpoint(job: Job, req: CheckpointReportWire) {
    const verdict = await checkCheckpointPath(job.spec.spec.checkpoint.dir, req.path);
    if (!verdict.ok) throw new HttpError(400, 'invalid_path', `body.path: ${verdict.reason}`);
    await this.enterRound(job, req);
    const spec = job.spec.spec;
    return this.tx(async (tx) => {
      const ledger = (await tx.shardLedgers.get(job.id, { lock: 'update' }))!;
      if (ledger.round !== req.round) throw stale(job, req, ledger.round);
      const round = await tx.rendezvous.getRound({ jobId: job.id, round: req.round });
      const worldSize = (round?.nodeCount ?? 0) * spec.nprocPerNode;
      if (req.rank >= worldSize) {
        throw new HttpError(409, 'rank_outside_world', `rank ${req.rank} is outside the world of round ${req.round} (size ${worldSize})`);
      }
      await tx.checkpoints.report({ jobId: job.id, step: req.step, rank: req.rank, path: req.path, bytes: req.bytes, checksum: req.checksum });
      const reports = await tx.checkpoints.listForStep(job.id, req.step);
      const reported = new Set(reports.map((r) => r.rank).filter((r) => r < worldSize)).size;
      if (reported < worldSize) return { committed: false, reported, worldSize };
      const doneShards = await tx.shards.countDoneThrough(job.id, req.step);
      const shardCursor = { round: req.round, step: req.step, doneShards };
      if (!(await tx.checkpoints.commit({ jobId: job.id, step: req.step, worldSize, shardCursor }))) {
        return { committed: false, reported, worldSize };
      }
      await tx.nodeEvents.append({ jobId: job.id, kind: 'checkpoint_committed', data: { worldSize, ...shardCursor } });
      const committed = (await tx.checkpoints.listCommits(job.id)).map((c) => c.step);
      const { dropCommits, partialBelow } = checkpointRetention(committed, spec.checkpoint.keep);
      const doomedReports = [
        ...(await Promise.all(dropCommits.map((s) => tx.checkpoints.listForStep(job.id, s)))).flat(),
        ...(await tx.checkpoints.listUncommittedBelow(job.id, partialBelow)),
      ];
      // A kept step's file may share a path with a dropped one (a trainer reusing names): the agent
      // that deletes spares every file a live report names (agent/checkpointDeletion.ts).
      await tx.checkpoints.doom(job.id, doomedReports);
      await tx.checkpoints.deleteSteps(job.id, [...new Set(doomedReports.map((r) => r.step)), ...dropCommits]);
      return { committed: true, reported, worldSize };
    });
  }
}
