// Who may ask the Brain about a job: the job's own token (its agents and trainers) or the
// operator token (`rover brain …`, the worker's plan requests). Every refusal is one and the same
// reply, so a caller without a valid token cannot tell an unknown job from a wrong token.
import type { FastifyRequest } from 'fastify';
import { secretMatches, tokenMatches } from '../common/tokens.ts';
import type { Store } from '../store/index.ts';
import { HttpError } from './errors.ts';

/** The `Authorization: Bearer <token>` header's token. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
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

  /** Passes the operator, or (with `jobId`) the holder of that job's token; throws brainRefusal otherwise. */
  async check(request: FastifyRequest, jobId?: string): Promise<void> {
    if (this.isOperator(request)) return;
    if (jobId !== undefined) {
      const job = await this.store.jobs.get(jobId);
      if (job && tokenMatches(bearerToken(request), job.tokenDigest)) return;
    }
    throw brainRefusal();
  }
}
