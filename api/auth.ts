// Who may ask the Brain about a job: the job's own token (its agents and trainers) or the
// operator token (`rover brain …`, the worker's plan requests). Every refusal is one and the same
// reply, so a caller without a valid token cannot tell an unknown job from a wrong token.
import type { FastifyRequest } from 'fastify';
import { nodeTokenScope, secretMatches, tokenMatches, type NodeTokenScope } from '../common/tokens.ts';
import type { Store } from '../store/index.ts';
import { HttpError } from './errors.ts';

/** The `Authorization: Bearer <token>` header's token. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
}

/**
 * The node incarnation a request names (`node` and `incarnation` in its JSON body, or in its
 * query), for checking a node token's scope before the body is validated; undefined when it names
 * none (validation then refuses a malformed one).
 */
export function namedNode(request: FastifyRequest): NodeTokenScope | undefined {
  for (const source of [request.body, request.query]) {
    if (typeof source !== 'object' || source === null) continue;
    const { node, incarnation } = source as Record<string, unknown>;
    const n = typeof node === 'string' && /^\d{1,9}$/.test(node) ? Number(node) : node;
    const i = typeof incarnation === 'string' && /^\d{1,9}$/.test(incarnation) ? Number(incarnation) : incarnation;
    if (Number.isInteger(n) && Number.isInteger(i)) return { node: n as number, incarnation: i as number };
  }
  return undefined;
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

  /** Passes the operator, or (with `jobId`) the holder of that job's token or one of its node tokens; throws brainRefusal otherwise. */
  async check(request: FastifyRequest, jobId?: string): Promise<void> {
    if (this.isOperator(request)) return;
    if (jobId !== undefined) {
      const job = await this.store.jobs.get(jobId);
      const token = bearerToken(request);
      if (job && (tokenMatches(token, job.tokenDigest) || nodeTokenScope(token, this.operatorToken, job.tokenDigest))) return;
    }
    throw brainRefusal();
  }
}
