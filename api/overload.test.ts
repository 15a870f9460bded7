// The in-flight gate on a real listener: a request whose client is gone by the time it is looked
// at runs no handler and leaves no slot behind; a request met while the event loop works through a
// backlog is shed with 429. (The in-flight limit itself: api/longPoll.test.ts, on the real API.)
import fastify from 'fastify';
import { afterEach, expect, it } from 'vitest';
import { InFlightGate } from './overload.ts';

const apps: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

/** A listener with the gate and two routes; `before` runs ahead of the gate on every request. */
async function serve(before: (url: string, socket: { destroy(): void }) => void) {
  const app = fastify();
  apps.push(app);
  let handled = 0;
  app.addHook('onRequest', async (request) => before(request.url, request.raw.socket));
  const gate = new InFlightGate({ maxInFlight: 1, maxLagMs: 600 });
  gate.install(app);
  for (const route of ['/gone', '/late', '/ok']) app.get(route, async () => ++handled);
  app.get('/beat', { config: { shedFirst: true } }, async () => ++handled);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, gate, handled: () => handled };
}

it('drops a request whose client went before it was served: no handler runs, its slot is free', async () => {
  // Stands in for a client that gave up while its request queued: the socket is gone at the gate.
  const api = await serve((url, socket) => url === '/gone' && socket.destroy());
  await expect(fetch(`${api.url}/gone`)).rejects.toThrow();
  expect(api.handled()).toBe(0);
  expect(api.gate.inFlight).toBe(0);
  expect((await fetch(`${api.url}/ok`)).status).toBe(200);
  expect(api.handled()).toBe(1);
});

it('sheds a request met while the event loop has not come round for longer than the lag limit, with Retry-After', async () => {
  // Stands in for the requests before it in one long stretch of socket callbacks (SQLite runs each
  // to its end): the loop's timers do not run for a second.
  const api = await serve((url) => {
    if (url !== '/late') return;
    const until = performance.now() + 1000;
    while (performance.now() < until);
  });
  const late = await fetch(`${api.url}/late`);
  expect(late.status).toBe(429);
  expect(late.headers.get('retry-after')).toBe('1');
  expect((await late.json()).message).toMatch(/event loop has not come round for \d+ ms, limit 600: ROVER_API_MAX_LAG_MS/);
  expect(api.handled()).toBe(0);
  // Once the loop came round, requests are served again.
  await new Promise((r) => setTimeout(r, 100));
  expect((await fetch(`${api.url}/ok`)).status).toBe(200);
});

it('sheds a route marked shedFirst (the heartbeat) at half the limits, and others not yet', async () => {
  // 400 ms without the loop coming round: over half the 600 ms limit, under the whole.
  const block = () => {
    const until = performance.now() + 400;
    while (performance.now() < until);
  };
  const api = await serve((url) => (url === '/beat' || url === '/ok') && block());
  expect((await fetch(`${api.url}/beat`)).status).toBe(429);
  await new Promise((r) => setTimeout(r, 100));
  expect((await fetch(`${api.url}/ok`)).status).toBe(200);
});
