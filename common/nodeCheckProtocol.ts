// Wire contract of the pre-flight node check: POST /v1/jobs/:job/nodes/check. The agent polls it
// with its check server's address (and the result of the round it just ran); the API answers with
// what to do next: skip the check, wait, probe the given peers for a round, or the verdict.
import { z } from 'zod';
import { nodeRef } from './protocol.ts';

export const nodeCheckRequest = z.strictObject({
  ...nodeRef,
  host: z.string().min(1).max(255),
  /** Port of this agent's exchange server (it stays open while the agent lives). */
  port: z.number().int().min(1).max(65535),
  /** The exchange server's pairing secret (agent/nodeCheck.ts): given only to this node's peers. */
  secret: z.string().regex(/^[0-9a-f]{32}$/, 'must be 32 lowercase hex characters'),
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
  z.strictObject({ action: z.literal('probe'), round: z.number().int(), probeBytes: z.number().int(), peers: z.array(peer) }),
  /** hold: the workflow will remove this incarnation (faulty, or an excluded straggler): do not join. */
  z.strictObject({ action: z.literal('done'), verdict: z.enum(NODE_CHECK_VERDICTS), hold: z.boolean() }),
]);
export type NodeCheckResponse = z.infer<typeof nodeCheckResponse>;

/** auto: on from 4 nodes. */
export function nodeCheckEnabled(mode: 'auto' | 'on' | 'off' | undefined, maxNodes: number): boolean {
  return mode === 'on' || ((mode ?? 'auto') === 'auto' && maxNodes >= 4);
}
