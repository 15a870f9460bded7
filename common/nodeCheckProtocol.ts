// Wire contract of the pre-flight node check: POST /v1/jobs/:job/nodes/check. The agent polls it
// (with its exchange server for the current round once asked for one, and the result of the round
// it just ran); the API answers with what to do next: skip the check, wait, serve a round (open an
// exchange server with a fresh secret for it and poll again with it), probe the given peers for a
// round, or the verdict. common/nodeCheckSession.ts is the state machine behind the answers.
import { z } from 'zod';
import { nodeRef } from './protocol.ts';

const pairingSecret = z.string().regex(/^[0-9a-f]{32}$/, 'must be 32 lowercase hex characters');

export const nodeCheckRequest = z.strictObject({
  ...nodeRef,
  host: z.string().min(1).max(255),
  /**
   * Agents before per-round secrets: their exchange server's port and its one secret, for every
   * round (the API treats them as registered for each round they take part in).
   */
  port: z.number().int().min(1).max(65535).optional(),
  secret: pairingSecret.optional(),
  /** The exchange server this agent opened for the round a `serve` answer named; given only to its peers. */
  serving: z
    .strictObject({
      session: z.number().int().min(1),
      round: z.number().int().min(1).max(2),
      port: z.number().int().min(1).max(65535),
      secret: pairingSecret,
    })
    .optional(),
  result: z
    .strictObject({
      round: z.number().int().min(1).max(2),
      ok: z.boolean(),
      seconds: z.number().min(0),
      error: z.string().max(1024).optional(),
    })
    .optional(),
});
export type NodeCheckRequest = z.infer<typeof nodeCheckRequest>;

export const NODE_CHECK_VERDICTS = ['ok', 'faulty', 'straggler'] as const;
export type NodeCheckVerdictKind = (typeof NODE_CHECK_VERDICTS)[number];

const peer = z.strictObject({ node: z.number().int().min(0), host: z.string(), port: z.number().int(), secret: z.string() });

export const nodeCheckResponse = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('skip') }),
  z.strictObject({ action: z.literal('wait') }),
  /** This node takes part in this round: open an exchange server with a fresh secret and poll again with it (`serving`). */
  z.strictObject({ action: z.literal('serve'), session: z.number().int(), round: z.number().int() }),
  z.strictObject({ action: z.literal('probe'), round: z.number().int(), probeBytes: z.number().int(), peers: z.array(peer) }),
  /** hold: the workflow will remove this incarnation (faulty, or an excluded straggler): do not join. */
  z.strictObject({ action: z.literal('done'), verdict: z.enum(NODE_CHECK_VERDICTS), hold: z.boolean() }),
]);
export type NodeCheckResponse = z.infer<typeof nodeCheckResponse>;

/** auto: on from 4 nodes. */
export function nodeCheckEnabled(mode: 'auto' | 'on' | 'off' | undefined, maxNodes: number): boolean {
  return mode === 'on' || ((mode ?? 'auto') === 'auto' && maxNodes >= 4);
}
