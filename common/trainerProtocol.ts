// Wire contract between training processes (clients/python, clients/ts) and the Rover API.
// Every endpoint lives under /v1/jobs/:job and needs `Authorization: Bearer <job token>`
// (ROVER_TOKEN in the trainer's environment). A trainer names itself by node, incarnation,
// rank and the rendezvous round it was started for (ROVER_ROUND): a request from a round the
// job has moved past is refused with 409 `stale_round`, so a straggler cannot touch the ledger.
import { z } from 'zod';

const count = z.number().int().min(0);

export const trainerRef = {
  node: count,
  incarnation: count,
  /** Global RANK of the process. */
  rank: count,
  /** ROVER_ROUND: the rendezvous round the process was started in. */
  round: z.number().int().min(1),
};

export const shardKey = z.strictObject({ epoch: count, shardIndex: count });
export type ShardKeyWire = z.infer<typeof shardKey>;

/** POST /v1/jobs/:job/shards/lease — the next shards for this trainer, lowest epoch first. */
export const leaseRequest = z.strictObject({ ...trainerRef, count: z.number().int().min(1).max(1024).default(1) });
export type LeaseRequest = z.infer<typeof leaseRequest>;

export const leasedShard = z.object({
  epoch: count,
  shardIndex: count,
  /** Sample indices [startIndex, endIndex). */
  startIndex: count,
  endIndex: count,
  attempts: count,
});
export type LeasedShard = z.infer<typeof leasedShard>;

export const leaseResponse = z.object({
  shards: z.array(leasedShard),
  /** No shard is left to lease or in flight: the dataset is finished. */
  finished: z.boolean(),
  /** When the leases run out unless reported done (ms since the epoch). */
  leaseExpiresAt: z.number(),
  /** Committed step this round resumes from (0 when none). */
  resumeStep: count,
});
export type LeaseResponse = z.infer<typeof leaseResponse>;

/** POST /v1/jobs/:job/shards/done — shards whose samples went into training step `step`. */
export const doneRequest = z.strictObject({ ...trainerRef, step: count, shards: z.array(shardKey).min(1).max(1024) });
export type DoneRequest = z.infer<typeof doneRequest>;
export const doneResponse = z.object({
  /** Shards counted now (first report from the lease holder). */
  counted: count,
  /** Shards not counted: done before, or the lease was not this trainer's any more. */
  ignored: z.array(shardKey),
});
export type DoneResponse = z.infer<typeof doneResponse>;

/** POST /v1/jobs/:job/shards/giveback — shards this trainer will not process. */
export const giveBackRequest = z.strictObject({ ...trainerRef, shards: z.array(shardKey).min(1).max(1024) });
export type GiveBackRequest = z.infer<typeof giveBackRequest>;

/** POST /v1/jobs/:job/trainers/step — a training step finished, with optional metrics. */
export const stepReport = z.strictObject({
  ...trainerRef,
  step: count,
  metrics: z.record(z.string().min(1).max(128), z.number()).default({}),
});
export type StepReport = z.infer<typeof stepReport>;

/** POST /v1/jobs/:job/checkpoints — this rank saved its checkpoint of `step`. */
export const checkpointReport = z.strictObject({
  ...trainerRef,
  step: z.number().int().min(1),
  path: z.string().min(1).max(4096),
  bytes: count,
  /** sha256 hex of the file's bytes. */
  checksum: z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256 in lowercase hex'),
});
export type CheckpointReportWire = z.infer<typeof checkpointReport>;
export const checkpointReportResponse = z.object({
  /** True when this report completed the step: every rank of the world has reported it. */
  committed: z.boolean(),
  /** Ranks that reported the step so far / ranks in the world. */
  reported: count,
  worldSize: count,
});

/** Where a trainer found the committed state it resumed from: its node's shared memory, or storage. */
export const RESTORE_SOURCES = ['shm', 'storage'] as const;

/**
 * POST /v1/jobs/:job/checkpoints/restored — this rank loaded the committed state of `step` from
 * `source`, in `seconds`, and resumes after it; a checkpoint_restored event of the job.
 */
export const restoreReport = z.strictObject({
  ...trainerRef,
  step: z.number().int().min(1),
  source: z.enum(RESTORE_SOURCES),
  seconds: z.number().min(0).max(86_400).optional(),
});
export type RestoreReport = z.infer<typeof restoreReport>;

/** GET /v1/jobs/:job/checkpoints/latest?round=R — where a trainer of round R resumes. */
export const latestQuery = z.strictObject({ round: z.coerce.number().int().min(1).optional() });
export const latestCheckpoint = z.object({
  /** 0: nothing committed yet, start from scratch. */
  step: count,
  ranks: z.array(z.object({ rank: count, path: z.string(), bytes: count, checksum: z.string() })),
});
export type LatestCheckpoint = z.infer<typeof latestCheckpoint>;

/**
 * GET /v1/jobs/:job/config — the job's merged Brain configuration. With `after` (a version the
 * caller has) and `waitMs`, a long poll: answers as soon as the version differs, or after waitMs
 * with the same version.
 */
export const configQuery = z.strictObject({
  after: z.string().min(1).max(64).optional(),
  waitMs: z.coerce.number().int().min(0).max(60_000).default(0),
});

export const jobConfigResponse = z.object({
  /** Opaque; changes exactly when the job's merged configuration changes. Also ROVER_CONFIG_VERSION at process start. */
  version: z.string(),
  configure: z.record(z.string(), z.unknown()),
  /** Configurations that applied, `source/name`, in merge order. */
  applied: z.array(z.string()),
  /** Which configuration each top-level key came from. */
  origin: z.record(z.string(), z.string()),
});
export type JobConfigResponse = z.infer<typeof jobConfigResponse>;
