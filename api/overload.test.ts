// The in-flight gate on a real listener: a request whose client is gone by the time it is looked
// at runs no handler and leaves no slot behind.
import fastify from 'fastify';
import { expect, it } from 'vitest';
import { InFlightGate } from './overload.ts';

it('drops a request whose client went before it was served: no handler runs, its slot is free', async () => {
  const app = fastify();
  let handled = 0;
  // Stands in for a client that gave up while its request queued: the socket is gone at the gate.
  app.addHook('onRequest', async (request) => {
    if (request.url === '/gone') request.raw.socket.destroy();
  });
  const gate = new InFlightGate(1);
  gate.install(app);
  app.get('/gone', async () => ++handled);
  app.get('/ok', async () => ++handled);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    await expect(fetch(`${url}/gone`)).rejects.toThrow();
    expect(handled).toBe(0);
    expect(gate.inFlight).toBe(0);
    expect((await fetch(`${url}/ok`)).status).toBe(200);
    expect(handled).toBe(1);
  } finally {
    await app.close();
  }
});
