// The node-check exchange server is a deliberate listener: on the node's own address only, and
// answering only a peer that presents its pairing secret.
import { afterEach, describe, expect, it } from 'vitest';
import type { Server } from 'node:net';
import { bindAddress, exchange, runCheckRound, startExchangeServer } from './nodeCheck.ts';

describe('the node-check exchange server', () => {
  const servers: Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });
  const start = async (host: string) => {
    const started = await startExchangeServer(host);
    servers.push(started.server);
    return started;
  };

  it('listens on the node address it is given, not on every interface', async () => {
    const { server } = await start('127.0.0.1');
    expect(server.address()).toMatchObject({ address: '127.0.0.1' });
    // A name is resolved to this node's address (a Kubernetes pod's service name, here localhost).
    expect(['127.0.0.1', '::1']).toContain(await bindAddress('localhost'));
  });

  it('acknowledges a peer with its secret and drops one without it or with another', async () => {
    const { port, secret } = await start('127.0.0.1');
    expect(secret).toMatch(/^[0-9a-f]{32}$/);
    await expect(exchange('127.0.0.1', port, secret, 64 * 1024, 5_000)).resolves.toBeUndefined();

    const other = (await start('127.0.0.1')).secret;
    await expect(exchange('127.0.0.1', port, other, 1024, 5_000)).rejects.toThrow(/closed without acknowledging|ECONNRESET|EPIPE/);
    // Nothing but payload: the first 32 bytes are not the secret.
    await expect(exchange('127.0.0.1', port, '', 4096, 5_000)).rejects.toThrow(/closed without acknowledging|ECONNRESET|EPIPE/);
    // Fewer bytes than a secret, then silence: never acknowledged.
    await expect(exchange('127.0.0.1', port, secret.slice(0, 10), 0, 5_000)).rejects.toThrow(/closed without acknowledging|ECONNRESET|EPIPE/);
  });

  it('fails a check round whose peer secret is wrong, and passes it with the right one', async () => {
    const peer = await start('127.0.0.1');
    const ok = await runCheckRound([{ host: '127.0.0.1', port: peer.port, secret: peer.secret }], 1024, 5_000, undefined);
    expect(ok).toMatchObject({ ok: true });
    const refused = await runCheckRound([{ host: '127.0.0.1', port: peer.port, secret: 'f'.repeat(32) }], 1024, 5_000, undefined);
    expect(refused).toMatchObject({ ok: false });
  });
});
