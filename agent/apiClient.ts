// HTTP client for the Rover API, plus the retry loop the agent wraps it in.
// Each client call is one attempt; the agent decides how long to keep retrying.
import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import {
  heartbeatResponse,
  joinResponse,
  roundStatus,
  type AgentEvent,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JoinRequest,
  type JoinResponse,
  nodeReportResponse,
  type NodeReport,
  type NodeReportResponse,
  type RegisterRequest,
  type RoundStatus,
} from '../common/protocol.ts';
import { ApiEndpoints, retryAfterDelayMs, retryAfterMs } from '../common/apiUrls.ts';
import { nodeCheckResponse, type NodeCheckRequest, type NodeCheckResponse } from '../common/nodeCheckProtocol.ts';
import {
  deletionClaimResponse,
  deletionDoneResponse,
  liveResponse,
  type DeletionClaimRequest,
  type DeletionClaimResponse,
  type DeletionDoneRequest,
  type LiveResponse,
} from '../common/checkpointDeletionProtocol.ts';

export interface NodeRef {
  node: number;
  incarnation: number;
}

export interface ApiClient {
  register(req: RegisterRequest, signal?: AbortSignal): Promise<void>;
  join(req: JoinRequest, signal?: AbortSignal): Promise<JoinResponse>;
  /** With `waitMs`, a long poll: the API answers once the round leaves 'open', or after waitMs. */
  roundStatus(round: number, ref: NodeRef, signal?: AbortSignal, waitMs?: number): Promise<RoundStatus>;
  heartbeat(req: HeartbeatRequest, signal?: AbortSignal): Promise<HeartbeatResponse>;
  report(req: NodeReport, signal?: AbortSignal): Promise<NodeReportResponse>;
  /** Evidence (stack dumps) into the job's event bus; optional for test doubles. */
  postEvent?(req: AgentEvent, signal?: AbortSignal): Promise<void>;
  /** Pre-flight node check poll; optional for test doubles (no check then). */
  nodeCheck?(req: NodeCheckRequest, signal?: AbortSignal): Promise<NodeCheckResponse>;
}

/** The checkpoint-deletion calls (common/checkpointDeletionProtocol.ts) the agent's deleter makes. */
export interface DeletionClient {
  claimDeletions(req: DeletionClaimRequest, signal?: AbortSignal): Promise<DeletionClaimResponse>;
  liveCheckpoints(ref: NodeRef, after?: { step: number; rank: number }, signal?: AbortSignal): Promise<LiveResponse>;
  deletionsDone(req: DeletionDoneRequest, signal?: AbortSignal): Promise<number>;
}

/** The API answered with a non-2xx status. */
export class ApiHttpError extends Error {
  constructor(
    readonly status: number,
    readonly endpoint: string,
    body: string,
    /** What the answer's Retry-After header asked for (429 from an overloaded API, 503). */
    readonly retryAfterMs?: number,
  ) {
    super(`${endpoint} answered HTTP ${status}${body ? `: ${body.slice(0, 500)}` : ''}`);
    this.name = 'ApiHttpError';
  }
}

/** The API answered 2xx with a body this agent does not understand (version mismatch?). */
export class ApiProtocolError extends Error {
  override name = 'ApiProtocolError';
}

/** Worth another attempt: network errors, timeouts, 5xx, 408 and 429. Other 4xx and bad bodies are not. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ApiHttpError) return err.status >= 500 || err.status === 408 || err.status === 429;
  return !(err instanceof ApiProtocolError);
}

export interface HttpApiClientOptions {
  /** Base URLs of the Rover API replicas, e.g. ['http://127.0.0.1:8470']; see common/apiUrls.ts. */
  baseUrls: readonly string[];
  job: string;
  token: string;
  /** Which replica to start with (modulo their count): the node id spreads agents over them. */
  start?: number;
  /** Per-attempt timeout. Default 10 s; a long poll gets its wait on top. */
  requestTimeoutMs?: number;
  /** The fetch to send with; default the global one (see ApiEndpoints). */
  fetch?: typeof fetch;
}

export class HttpApiClient implements ApiClient, DeletionClient {
  private readonly jobPath: string;
  private readonly requestTimeoutMs: number;
  /** The replicas; a request that cannot reach one moves on to the next. */
  readonly endpoints: ApiEndpoints;

  constructor(private readonly opts: HttpApiClientOptions) {
    this.endpoints = new ApiEndpoints(opts.baseUrls.map((u) => u.replace(/\/+$/, '')), opts.start, opts.fetch);
    this.jobPath = `/v1/jobs/${encodeURIComponent(opts.job)}`;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
  }

  async register(req: RegisterRequest, signal?: AbortSignal): Promise<void> {
    await this.send('POST', '/nodes/register', req, signal);
  }

  join(req: JoinRequest, signal?: AbortSignal): Promise<JoinResponse> {
    return this.receive('POST', '/rendezvous/join', req, joinResponse, signal);
  }

  roundStatus(round: number, ref: NodeRef, signal?: AbortSignal, waitMs = 0): Promise<RoundStatus> {
    // An agent of before long polls sends no waitMs; this one only when it waits.
    const query = `?node=${ref.node}&incarnation=${ref.incarnation}${waitMs > 0 ? `&waitMs=${waitMs}` : ''}`;
    return this.receive('GET', `/rendezvous/${round}${query}`, undefined, roundStatus, signal, waitMs);
  }

  heartbeat(req: HeartbeatRequest, signal?: AbortSignal): Promise<HeartbeatResponse> {
    return this.receive('POST', '/nodes/heartbeat', req, heartbeatResponse, signal, req.waitMs ?? 0);
  }

  report(req: NodeReport, signal?: AbortSignal): Promise<NodeReportResponse> {
    return this.receive('POST', '/nodes/report', req, nodeReportResponse, signal);
  }

  nodeCheck(req: NodeCheckRequest, signal?: AbortSignal): Promise<NodeCheckResponse> {
    return this.receive('POST', '/nodes/check', req, nodeCheckResponse, signal);
  }

  async postEvent(req: AgentEvent, signal?: AbortSignal): Promise<void> {
    await this.send('POST', '/nodes/events', req, signal);
  }

  claimDeletions(req: DeletionClaimRequest, signal?: AbortSignal): Promise<DeletionClaimResponse> {
    return this.receive('POST', '/checkpoints/deletions/claim', req, deletionClaimResponse, signal);
  }

  liveCheckpoints(ref: NodeRef, after?: { step: number; rank: number }, signal?: AbortSignal): Promise<LiveResponse> {
    const page = after ? `&afterStep=${after.step}&afterRank=${after.rank}` : '';
    return this.receive('GET', `/checkpoints/live?node=${ref.node}&incarnation=${ref.incarnation}${page}`, undefined, liveResponse, signal);
  }

  async deletionsDone(req: DeletionDoneRequest, signal?: AbortSignal): Promise<number> {
    return (await this.receive('POST', '/checkpoints/deletions/done', req, deletionDoneResponse, signal)).acknowledged;
  }

  /**
   * One request (to the first replica that can be reached); resolves with the body of a 2xx answer.
   * `waitMs`: the server may hold the answer that long (a long poll), on top of the attempt's timeout.
   */
  private async send(method: Method, path: string, body: unknown, signal?: AbortSignal, waitMs = 0): Promise<string> {
    const init = {
      method,
      headers: {
        authorization: `Bearer ${this.opts.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    };
    const res = await this.endpoints.fetch(this.jobPath + path, init, { ...(signal && { signal }), attemptTimeoutMs: this.requestTimeoutMs + waitMs });
    const text = await res.text();
    if (!res.ok) throw new ApiHttpError(res.status, endpointName(method, path), text, retryAfterMs(res.headers.get('retry-after')));
    return text;
  }

  /** One request whose 2xx answer must match `schema`. */
  private async receive<S extends z.ZodType>(
    method: Method,
    path: string,
    body: unknown,
    schema: S,
    signal?: AbortSignal,
    waitMs = 0,
  ): Promise<z.infer<S>> {
    const text = await this.send(method, path, body, signal, waitMs);
    const endpoint = endpointName(method, path);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ApiProtocolError(`${endpoint} answered with a body that is not JSON: ${text.slice(0, 200)}`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
      throw new ApiProtocolError(`${endpoint} answered with an unexpected body: ${issues}`);
    }
    return parsed.data;
  }
}

type Method = 'GET' | 'POST';

function endpointName(method: Method, path: string): string {
  return `${method} ${path.split('?')[0]}`;
}

export interface Backoff {
  /** Delay ceiling of the first retry. */
  baseMs: number;
  /** Delay ceiling never exceeds this. */
  capMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 200, capMs: 5000 };

/**
 * "Full jitter" exponential backoff: a uniform delay in [0, min(cap, base · 2^attempt)).
 * Spreading retries over the whole window keeps a thousand agents from hammering a recovering API
 * in lockstep. `attempt` counts from 0.
 */
export function backoffDelayMs(attempt: number, backoff: Backoff = DEFAULT_BACKOFF, random = Math.random): number {
  const ceiling = Math.min(backoff.capMs, backoff.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * One round-status request of the agent waits this long for the round to leave 'open' (a long
 * poll: the API holds it, re-reading the round's row, and caps the wait at 30 s). Its timeout is
 * the per-attempt timeout plus this.
 */
export const ROUND_WAIT_MS = 20_000;

/**
 * A uniform random delay in [0, maxMs), ms: an agent's wait before its first request, so that
 * agents started together spread their registrations (the bound: common/startJitter.ts).
 */
export function startDelayMs(maxMs: number, random = Math.random): number {
  return maxMs > 0 ? Math.floor(random() * maxMs) : 0;
}

export interface RetryOptions {
  backoff?: Backoff;
  /** Aborting stops the loop; the loop then rejects with the signal's reason. */
  signal?: AbortSignal;
  retryable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  random?: () => number;
}

/**
 * The pause before retry `attempt` after `err`: the backoff's draw, but never less than what an
 * answer's Retry-After asked for, plus jitter (common/apiUrls.ts retryAfterDelayMs), so agents
 * told to come back in a second do not all come back in the same millisecond.
 */
export function retryDelayMs(err: unknown, attempt: number, backoff: Backoff = DEFAULT_BACKOFF, random = Math.random): number {
  const drawn = backoffDelayMs(attempt, backoff, random);
  const asked = err instanceof ApiHttpError ? err.retryAfterMs : undefined;
  return asked === undefined ? drawn : Math.max(drawn, retryAfterDelayMs(asked, random));
}

/** Calls `fn` until it resolves, a non-retryable error occurs, or the signal aborts. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const { signal, retryable = isRetryable } = opts;
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      signal?.throwIfAborted();
      if (!retryable(err)) throw err;
      const delayMs = retryDelayMs(err, attempt, opts.backoff, opts.random);
      opts.onRetry?.(err, attempt, delayMs);
      await abortableSleep(delayMs, signal);
    }
  }
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export async function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (err) {
    signal?.throwIfAborted();
    throw err;
  }
}
