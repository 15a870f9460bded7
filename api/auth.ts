// Who may ask the Brain about a job: the operator token (`rover brain …`, the worker's plan
// requests) for everything; the job's token, and for reads its nodes' tokens (its agents and
// trainers), for that job. Every refusal is one and the same
// reply, so a caller without a valid token cannot tell an unknown job from a wrong token.
import type { FastifyRequest } from 'fastify';
import { bearerOf, nodeTokenScope, secretMatches, tokenMatches } from '../common/tokens.ts';
import type { Store } from '../store/index.ts';
import { HttpError } from './errors.ts';

/** The `Authorization: Bearer <token>` header's token (common/tokens.ts bearerOf). */
export function bearerToken(request: FastifyRequest): string | undefined {
  return bearerOf(request.headers.authorization);
}

/** What a request says about who acts: each field present when the request names it. */
export interface NamedNode {
  node?: number;
  incarnation?: number;
  /** A training process's global rank, with the rendezvous round it was started in. */
  rank?: number;
  round?: number;
}

/**
 * The node, incarnation, rank and round a request names (in its JSON body and in its query), read
 * before the body is validated so that a node token's scope is checked first. Each
 * value is read as the routes' schemas read it, `Number(value)` (zod's z.coerce.number), so
 * `"1.0"`, `"+1"` and `"1e0"` name node 1 here too; a value that is no number is NaN, which
 * matches no token (a job token ignores this). Body and query naming different values read as
 * NaN as well. Undefined fields: the request names no node.
 */
export function namedNode(request: FastifyRequest): NamedNode {
  const named: NamedNode = {};
  for (const field of ['node', 'incarnation', 'rank', 'round'] as const) {
    const values = new Set<number>();
    for (const source of [request.body, request.query]) {
      if (typeof source !== 'object' || source === null) continue;
      const value = (source as Record<string, unknown>)[field];
      if (value !== undefined) values.add(Number(value));
    }
    if (values.size === 1) named[field] = [...values][0];
    else if (values.size > 1) named[field] = Number.NaN;
  }
  return named;
}

/** The single refusal: the same status and body for no token, a wrong one, and an unknown job. */
export function brainRefusal(): HttpError {
  return new HttpError(403, 'forbidden', "needs the job's token or the operator token (Authorization: Bearer <token>)");
}

export class BrainAccess {
  constructor(
    private readonly store: Store,
    /** Unset: no operator access; only jobs' tokens open their own jobs. */
    private readonly operatorToken: string | undefined,
  ) {}

  isOperator(request: FastifyRequest): boolean {
    return secretMatches(bearerToken(request), this.operatorToken);
  }

  /**
   * Passes the operator, or (with `jobId`) the holder of that job's token or, where `nodeTokens`
   * is true, one of the job's node tokens; throws brainRefusal otherwise. Node tokens are what
   * trainers hold, so they open reads only: a plan request records history (an OOM failure, a
   * sample window) and is the worker's or the operator's to make.
   */
  async check(request: FastifyRequest, jobId?: string, opts: { nodeTokens: boolean } = { nodeTokens: true }): Promise<void> {
    if (this.isOperator(request)) return;
    if (jobId !== undefined) {
      const job = await this.store.jobs.get(jobId);
      const token = bearerToken(request);
      if (job && (tokenMatches(token, job.tokenDigest) || (opts.nodeTokens && nodeTokenScope(token, this.operatorToken, job.tokenDigest)))) return;
    }
    throw brainRefusal();
  }
}
