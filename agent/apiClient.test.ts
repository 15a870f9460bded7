import { once } from 'node:events';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { retryAfterMs } from '../common/apiUrls.ts';
import {
  backoffDelayMs,
  HttpApiClient,
  isRetryable,
  ApiHttpError,
  ApiProtocolError,
  retryDelayMs,
  startDelayMs,
  withRetry,
} from './apiClient.ts';

describe('backoffDelayMs', () => {
  const backoff = { baseMs: 200, capMs: 5000 };
  const almostOne = () => 0.999999;

  it('doubles the ceiling per attempt up to the cap', () => {
    const ceilings = [0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelayMs(a, backoff, almostOne) + 1);
    expect(ceilings).toEqual([200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  it('draws uniformly from zero to the ceiling (full jitter)', () => {
    expect(backoffDelayMs(3, backoff, () => 0)).toBe(0);
    expect(backoffDelayMs(3, backoff, () => 0.5)).toBe(800);
  });

  it('stays at the cap for huge attempt numbers', () => {
    expect(backoffDelayMs(10_000, backoff, almostOne)).toBe(4999);
  });
});

describe('startDelayMs (jitter of the first request)', () => {
  it('draws uniformly below the bound, and is 0 when the bound is 0', () => {
    expect(startDelayMs(1000, () => 0)).toBe(0);
    expect(startDelayMs(1000, () => 0.5)).toBe(500);
    expect(startDelayMs(1000, () => 0.999999)).toBe(999);
    expect(startDelayMs(0, () => 0.5)).toBe(0);
  });

  it('spreads a thousand agents over the whole window', () => {
    const delays = Array.from({ length: 1000 }, () => startDelayMs(1000));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(1000);
    // Every tenth of the window gets some: no burst at one instant.
    const tenths = new Set(delays.map((d) => Math.floor(d / 100)));
    expect(tenths.size).toBe(10);
  });
});

describe('Retry-After', () => {
  it('reads delta-seconds and an HTTP date, capped, and ignores junk', () => {
    expect(retryAfterMs('1')).toBe(1000);
    expect(retryAfterMs(' 2 ')).toBe(2000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 7000)).toBe(3000);
    expect(retryAfterMs('86400')).toBe(60_000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs('-1')).toBeUndefined();
  });

  it('waits at least what the answer asked for, plus up to as much again, never less than the backoff', () => {
    const busy = new ApiHttpError(429, 'POST /x', '', 1000);
    expect(retryDelayMs(busy, 0, { baseMs: 200, capMs: 5000 }, () => 0)).toBe(1000);
    expect(retryDelayMs(busy, 0, { baseMs: 200, capMs: 5000 }, () => 0.5)).toBe(1500);
    // A later attempt whose backoff draw is longer keeps it.
    expect(retryDelayMs(busy, 6, { baseMs: 200, capMs: 5000 }, () => 0.9)).toBe(4500);
    // Without Retry-After: the backoff alone.
    expect(retryDelayMs(new ApiHttpError(503, 'POST /x', ''), 0, { baseMs: 200, capMs: 5000 }, () => 0.5)).toBe(100);
  });
});

describe('isRetryable', () => {
  it.each([
    [new TypeError('fetch failed'), true],
    [new ApiHttpError(503, 'POST /x', ''), true],
    [new ApiHttpError(500, 'POST /x', ''), true],
    [new ApiHttpError(429, 'POST /x', ''), true],
    [new ApiHttpError(403, 'POST /x', ''), false],
    [new ApiHttpError(404, 'POST /x', ''), false],
    [new ApiProtocolError('bad body'), false],
  ])('%s → %s', (err, expected) => {
    expect(isRetryable(err)).toBe(expected);
  });
});

describe('withRetry', () => {
  const fast = { backoff: { baseMs: 1, capMs: 2 } };

  it('retries retryable errors until the call succeeds', async () => {
    const delays: number[] = [];
    const result = await withRetry(
      async (attempt) => {
        if (attempt < 3) throw new ApiHttpError(503, 'GET /x', 'down');
        return `ok after ${attempt}`;
      },
      { ...fast, onRetry: (_err, _attempt, delayMs) => delays.push(delayMs) },
    );
    expect(result).toBe('ok after 3');
    expect(delays).toHaveLength(3);
  });

  it('gives up at the first non-retryable error', async () => {
    let calls = 0;
    const refused = withRetry(async () => {
      calls++;
      throw new ApiHttpError(403, 'POST /nodes/register', 'bad token');
    }, fast);
    await expect(refused).rejects.toThrow('POST /nodes/register answered HTTP 403: bad token');
    expect(calls).toBe(1);
  });

  it('stops waiting when aborted and rejects with the abort reason', async () => {
    const controller = new AbortController();
    const retrying = withRetry(
      async () => {
        throw new TypeError('fetch failed');
      },
      { signal: controller.signal, backoff: { baseMs: 60_000, capMs: 60_000 }, random: () => 0.5 },
    );
    controller.abort(new Error('agent stopping'));
    await expect(retrying).rejects.toThrow('agent stopping');
  });
});

describe('HttpApiClient', () => {
  let server: Server | null = null;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  /** Serves every request with the given status and body, recording what came in. */
  async function serve(status: number, body: string) {
    const seen: { url: string; auth: string | undefined; body: string }[] = [];
    server = createServer(async (req, res) => {
      let text = '';
      for await (const chunk of req) text += String(chunk);
      seen.push({ url: req.url ?? '', auth: req.headers.authorization, body: text });
      res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    return { seen, client: new HttpApiClient({ baseUrls: [url], job: 'job-a b', token: 's3cret' }) };
  }

  it('sends the bearer token and JSON body to the job URL and parses the reply', async () => {
    const { seen, client } = await serve(200, JSON.stringify({ round: 4 }));
    const reply = await client.join({ node: 1, incarnation: 0, host: 'h', freePort: 1234 });
    expect(reply).toEqual({ round: 4 });
    expect(seen).toEqual([
      {
        url: '/v1/jobs/job-a%20b/rendezvous/join',
        auth: 'Bearer s3cret',
        body: JSON.stringify({ node: 1, incarnation: 0, host: 'h', freePort: 1234 }),
      },
    ]);
  });

  it('polls the round with node and incarnation in the query', async () => {
    const { seen, client } = await serve(200, JSON.stringify({ status: 'open', round: 2 }));
    expect(await client.roundStatus(2, { node: 3, incarnation: 1 })).toEqual({ status: 'open', round: 2 });
    expect(seen[0]?.url).toBe('/v1/jobs/job-a%20b/rendezvous/2?node=3&incarnation=1');
  });

  it('long-polls the round with waitMs in the query only when it waits', async () => {
    const { seen, client } = await serve(200, JSON.stringify({ status: 'open', round: 2 }));
    await client.roundStatus(2, { node: 3, incarnation: 1 }, undefined, 20_000);
    expect(seen[0]?.url).toBe('/v1/jobs/job-a%20b/rendezvous/2?node=3&incarnation=1&waitMs=20000');
  });

  it('turns a non-2xx answer into ApiHttpError with its status', async () => {
    const { client } = await serve(403, JSON.stringify({ error: 'bad token' }));
    const err = await client.report({ node: 0, incarnation: 0, kind: 'node_succeeded', round: 1, restarts: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiHttpError);
    expect((err as ApiHttpError).status).toBe(403);
    expect((err as Error).message).toContain('POST /nodes/report answered HTTP 403');
  });

  it('rejects a reply that breaks the protocol with ApiProtocolError', async () => {
    const { client } = await serve(200, JSON.stringify({ action: 'explode' }));
    const hb = client.heartbeat({ node: 0, incarnation: 0, round: 1, step: null, processes: [] });
    await expect(hb).rejects.toBeInstanceOf(ApiProtocolError);
  });

  it('moves to the next replica when one cannot be reached, and stays there', async () => {
    const { seen, client: direct } = await serve(200, JSON.stringify({ round: 4 }));
    const live = direct.endpoints.current;
    const client = new HttpApiClient({ baseUrls: ['http://127.0.0.1:1', live], job: 'job-a b', token: 's3cret' });
    expect(await client.join({ node: 1, incarnation: 0, host: 'h', freePort: 1234 })).toEqual({ round: 4 });
    expect(client.endpoints.current).toBe(live);
    await client.join({ node: 1, incarnation: 0, host: 'h', freePort: 1234 });
    expect(seen).toHaveLength(2);
  });

  it('times every attempt out against a server that never answers, under garbage collection too', async () => {
    // Node 20 can collect a signal of AbortSignal.any() with its listeners, and a request given it
    // then never times out (common/apiUrls.ts attemptSignal). The attempt's signal must stay alive.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    server = createServer(() => {}).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new HttpApiClient({ baseUrls: [url], job: 'j', token: 't', requestTimeoutMs: 300 });
    const collecting = setInterval(gc, 20);
    try {
      const errors = await Promise.all(Array.from({ length: 50 }, () => client.register({ node: 0, incarnation: 0, pid: 1, host: 'h' }).catch((e: unknown) => e)));
      expect(errors.map((e) => (e as Error).name)).toEqual(Array(50).fill('TimeoutError'));
    } finally {
      clearInterval(collecting);
      server.closeAllConnections();
    }
  }, 10_000);

  it('fails fast with a retryable error when nothing listens', async () => {
    const client = new HttpApiClient({ baseUrls: ['http://127.0.0.1:1', 'http://127.0.0.1:2'], job: 'j', token: 't' });
    const err = await client.register({ node: 0, incarnation: 0, pid: 1, host: 'h' }).catch((e) => e);
    expect(isRetryable(err)).toBe(true);
  });
});
