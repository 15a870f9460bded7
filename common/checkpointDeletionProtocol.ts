// Wire contract of checkpoint deletion (issue 17). A commit dooms the files of the steps that
// common/checkpointRetention.ts drops (past spec.checkpoint.keep, partial steps) in the store; an
// agent of the job, which sees the checkpoint folder, claims a batch, deletes what is still safe
// to delete and says so:
//   POST /v1/jobs/:job/checkpoints/deletions/claim  → a batch of doomed files under a claim token
//   GET  /v1/jobs/:job/checkpoints/live             → a page of the job's live reports (spared)
//   POST /v1/jobs/:job/checkpoints/deletions/done   → the batch's ids, with the claim token
// Every answer is bounded by a page size, whatever the number of nodes; only the job's own rows.
import { z } from 'zod';
import { nodeRef } from './protocol.ts';

/** Doomed files one claim hands out at most. */
export const DELETION_BATCH_MAX = 256;
/** A claim lapses after this long (ms): an agent that died holding it leaves its files to the next claim. */
export const CLAIM_LEASE_MS = 60_000;
/** Live reports one page holds at most. */
export const LIVE_PAGE_MAX = 1024;

const count = z.number().int().min(0);
const claimToken = z.string().regex(/^[0-9a-f]{32}$/, 'must be 32 lowercase hex characters (the claim answer\'s token)');

export const deletionClaimRequest = z.strictObject({
  ...nodeRef,
  limit: z.number().int().min(1).max(DELETION_BATCH_MAX).default(DELETION_BATCH_MAX),
});
export type DeletionClaimRequest = z.input<typeof deletionClaimRequest>;

export const doomedFile = z.object({
  id: count,
  step: count,
  rank: count,
  /** As the trainer reported it: inside the job's checkpoint folder by its words (checked at report). */
  path: z.string(),
  /** When the commit doomed it (ms since the epoch, the store's clock): a file modified later is a new save. */
  doomedAt: count,
});
export type DoomedFile = z.infer<typeof doomedFile>;

export const deletionClaimResponse = z.object({
  /** Empty: nothing doomed is unclaimed. */
  deletions: z.array(doomedFile),
  token: claimToken,
  /** The claim lapses then (ms since the epoch); another agent may take the files after. */
  claimedUntil: count,
});
export type DeletionClaimResponse = z.infer<typeof deletionClaimResponse>;

export const liveQuery = z.strictObject({
  node: z.coerce.number().int().min(0),
  incarnation: z.coerce.number().int().min(0),
  /** The page goes on after this (step, rank); both or neither. */
  afterStep: z.coerce.number().int().min(0).optional(),
  afterRank: z.coerce.number().int().min(0).optional(),
});

export const liveResponse = z.object({
  reports: z.array(z.object({ step: count, rank: count, path: z.string() })),
  /** Set when more pages follow: pass it as afterStep/afterRank. */
  next: z.object({ step: count, rank: count }).optional(),
});
export type LiveResponse = z.infer<typeof liveResponse>;

export const deletionDoneRequest = z.strictObject({
  ...nodeRef,
  token: claimToken,
  ids: z.array(count).max(DELETION_BATCH_MAX),
});
export type DeletionDoneRequest = z.infer<typeof deletionDoneRequest>;

export const deletionDoneResponse = z.object({ acknowledged: count });
