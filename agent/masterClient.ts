// HTTP client for the master service (the Rover API), plus the retry loop the agent wraps it in.
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
import { ApiEndpoints } from '../common/apiUrls.ts';
import { nodeCheckResponse, type NodeCheckRequest, type NodeCheckResponse } from '../common/nodeCheckProtocol.ts';

export interface NodeRef {
  node: number;
  incarnation: number;
}

export interface MasterClient {
  register(req: RegisterRequest, signal?: AbortSignal): Promise<void>;
  join(req: JoinRequest, signal?: AbortSignal): Promise<JoinResponse>;
  roundStatus(round: number, ref: NodeRef, signal?: AbortSignal): Promise<RoundStatus>;
  heartbeat(req: HeartbeatRequest, signal?: AbortSignal): Promise<HeartbeatResponse>;
  report(req: NodeReport, signal?: AbortSignal): Promise<NodeReportResponse>;
  /** Evidence (stack dumps) into the job's event bus; optional for test doubles. */
  postEvent?(req: AgentEvent, signal?: AbortSignal): Promise<void>;
  /** Pre-flight node check poll; optional for test doubles (no check then). */
  nodeCheck?(req: NodeCheckRequest, signal?: AbortSignal): Promise<NodeCheckResponse>;
}

/** The master answered with a non-2xx status. */
export class MasterHttpError extends Error {
  constructor(
    readonly status: number,
    readonly endpoint: string,
    body: string,
  ) {
    super(`${endpoint} answered HTTP ${status}${body ? `: ${body.slice(0, 500)}` : ''}`);
    this.name = 'MasterHttpError';
  }
}

/** The master answered 2xx with a body this agent does not understand (version mismatch?). */
export class MasterProtocolError extends Error {
  override name = 'MasterProtocolError';
}

/** Worth another attempt: network errors, timeouts, 5xx, 408 and 429. Other 4xx and bad bodies are not. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof MasterHttpError) return err.status >= 500 || err.status === 408 || err.status === 429;
  return !(err instanceof MasterProtocolError);
}

export interface HttpMasterClientOptions {
  /** Base URLs of the Rover API replicas, e.g. ['http://127.0.0.1:8470']; see common/apiUrls.ts. */
  baseUrls: readonly string[];
  job: string;
  token: string;
  /** Which replica to start with (modulo their count): the node id spreads agents over them. */
  start?: number;
  /** Per-attempt timeout. Default 10 s. */
  requestTimeoutMs?: number;
}

export class HttpMasterClient implements MasterClient {
  private readonly jobPath: string;
  private readonly requestTimeoutMs: number;
  /** The replicas; a request that cannot reach one moves on to the next. */
  readonly endpoints: ApiEndpoints;

  constructor(private readonly opts: HttpMasterClientOptions) {
    this.endpoints = new ApiEndpoints(opts.baseUrls.map((u) => u.replace(/\/+$/, '')), opts.start);
    this.jobPath = `/v1/jobs/${encodeURIComponent(opts.job)}`;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
  }

  async register(req: RegisterRequest, signal?: AbortSignal): Promise<void> {
    await this.send('POST', '/nodes/register', req, signal);
  }

  join(req: JoinRequest, signal?: AbortSignal): Promise<JoinResponse> {
    return this.receive('POST', '/rendezvous/join', req, joinResponse, signal);
  }

  roundStatus(round: number, ref: NodeRef, signal?: AbortSignal): Promise<RoundStatus> {
    const query = `?node=${ref.node}&incarnation=${ref.incarnation}`;
    return this.receive('GET', `/rendezvous/${round}${query}`, undefined, roundStatus, signal);
  }

  heartbeat(req: HeartbeatRequest, signal?: AbortSignal): Promise<HeartbeatResponse> {
    return this.receive('POST', '/nodes/heartbeat', req, heartbeatResponse, signal);
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

  /** One request (to the first replica that can be reached); resolves with the body of a 2xx answer. */
  private async send(method: Method, path: string, body: unknown, signal?: AbortSignal): Promise<string> {
    const init = {
      method,
      headers: {
        authorization: `Bearer ${this.opts.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    };
    const res = await this.endpoints.fetch(this.jobPath + path, init, { ...(signal && { signal }), attemptTimeoutMs: this.requestTimeoutMs });
    const text = await res.text();
    if (!res.ok) throw new MasterHttpError(res.status, endpointName(method, path), text);
    return text;
  }

  /** One request whose 2xx answer must match `schema`. */
  private async receive<S extends z.ZodType>(
    method: Method,
    path: string,
    body: unknown,
    schema: S,
    signal?: AbortSignal,
  ): Promise<z.infer<S>> {
    const text = await this.send(method, path, body, signal);
    const endpoint = endpointName(method, path);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new MasterProtocolError(`${endpoint} answered with a body that is not JSON: ${text.slice(0, 200)}`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
      throw new MasterProtocolError(`${endpoint} answered with an unexpected body: ${issues}`);
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

export interface RetryOptions {
  backoff?: Backoff;
  /** Aborting stops the loop; the loop then rejects with the signal's reason. */
  signal?: AbortSignal;
  retryable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  random?: () => number;
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
      const delayMs = backoffDelayMs(attempt, opts.backoff, opts.random);
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
