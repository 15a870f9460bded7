// Several Rover API replicas behind one setting: ROVER_API_URL=http://a:8470,http://b:8470. The
// API is stateless, so a client may send any request to any of them; it keeps to one and moves to
// the next when that one cannot be reached.

/**
 * The URLs of a comma-separated ROVER_API_URL, trailing slashes removed.
 * Throws an Error naming the entry that is not an http(s) URL.
 */
export function parseApiUrls(raw: string): string[] {
  const entries = raw.split(',').map((s) => s.trim());
  return entries.map((entry, i) => {
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      const where = entries.length > 1 ? `entry ${i + 1} of ${entries.length} ` : '';
      throw new Error(`${where}${JSON.stringify(entry)} is not an http(s) URL (give one URL, or several separated by commas)`);
    }
    return entry.replace(/\/+$/, '');
  });
}

/**
 * Sends requests to one of several API replicas: the current one until a request cannot reach it
 * (refused, reset, timed out), then the next, each at most once per request. Answers of any HTTP
 * status count as reached. `start` spreads clients over the replicas (e.g. the node id).
 */
export class ApiEndpoints {
  private index: number;

  constructor(
    readonly urls: readonly string[],
    start = 0,
    /** The fetch to send with; default the global one (a benchmark gives each simulated agent its own connections). */
    private readonly send: typeof fetch = (input, init) => fetch(input, init),
  ) {
    if (urls.length === 0) throw new Error('ApiEndpoints needs at least one URL');
    this.index = start % urls.length;
  }

  /** The replica requests go to now. */
  get current(): string {
    return this.urls[this.index]!;
  }

  /**
   * fetch(current + path), moving on to the next replica when it cannot be reached. Rejects with
   * the last replica's error when none can, or at once when `signal` (the caller's) aborts.
   * `init.signal` is not used: pass the caller's abort as `signal` and a per-attempt limit as
   * `attemptTimeoutMs`.
   */
  async fetch(path: string, init: Omit<RequestInit, 'signal'>, opts: { signal?: AbortSignal; attemptTimeoutMs?: number } = {}): Promise<Response> {
    let lastError: unknown;
    for (let tried = 0; tried < this.urls.length; tried++) {
      const attempt = attemptSignal(opts.signal, opts.attemptTimeoutMs);
      try {
        return await this.send(this.current + path, { ...init, ...(attempt.signal && { signal: attempt.signal }) });
      } catch (err) {
        opts.signal?.throwIfAborted();
        lastError = err;
        this.index = (this.index + 1) % this.urls.length;
      } finally {
        attempt.answered();
      }
    }
    throw lastError;
  }
}

/**
 * The signal of one attempt: it aborts when the caller's does (until the answer's headers came),
 * or with a TimeoutError after `timeoutMs` (reading the body included). Built by hand, not with
 * AbortSignal.any(): on Node 20 a signal from any() that nothing else refers to can be
 * garbage-collected with its listeners, and a request given it then never times out (300 plain
 * fetches to a silent server with any(timeout) signals: none timed out under GC pressure; the
 * benchmark's simulated agents hung that way). Here the timer holds the controller until it fires.
 */
function attemptSignal(caller: AbortSignal | undefined, timeoutMs: number | undefined): { signal: AbortSignal | undefined; answered: () => void } {
  if (timeoutMs === undefined) return { signal: caller, answered: () => {} };
  const controller = new AbortController();
  const onAbort = () => controller.abort(caller!.reason);
  const timer = setTimeout(() => {
    caller?.removeEventListener('abort', onAbort);
    controller.abort(new DOMException(`the request timed out after ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  timer.unref();
  if (caller?.aborted) onAbort();
  else caller?.addEventListener('abort', onAbort, { once: true });
  return { signal: controller.signal, answered: () => caller?.removeEventListener('abort', onAbort) };
}

/**
 * Milliseconds a Retry-After header asks for (delta-seconds or an HTTP date; RFC 9110 §10.2.3),
 * capped at `capMs`; undefined when absent or unreadable. The Rover API sends it with 429 when it
 * sheds load (api/overload.ts).
 */
export function retryAfterMs(header: string | null | undefined, now = Date.now(), capMs = 60_000): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  // An HTTP date starts with the day's name (`Fri, 07 Nov 2025 …`); Date.parse alone reads '-1' as a year.
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : /^[A-Za-z]/.test(value) ? Date.parse(value) - now : NaN;
  return Number.isFinite(ms) ? Math.min(capMs, Math.max(0, ms)) : undefined;
}

/** How long to wait before retrying after a Retry-After of `ms`: at least that, plus up to as much again at random. */
export function retryAfterDelayMs(ms: number, random = Math.random): number {
  return ms + Math.floor(random() * ms);
}
