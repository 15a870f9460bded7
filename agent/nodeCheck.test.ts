// The node-check exchange server is a deliberate listener: on the node's own address only,
// answering only a peer that presents the current round's pairing secret, and open only while
// this node takes part in a check.
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeCheckRequest, NodeCheckResponse } from '../common/nodeCheckProtocol.ts';
import { acceptsConnection } from '../test/helpers.ts';
import { bindAddress, exchange, ExchangeServer, runCheckRound, takePart } from './nodeCheck.ts';

const DROPPED = /closed without acknowledging|ECONNRESET|EPIPE/;

describe('the node-check exchange server', () => {
  const servers: ExchangeServer[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });
  const open = async (host = '127.0.0.1') => {
    const server = await ExchangeServer.open(host);
    servers.push(server);
    return server;
  };

  it('listens on the node address it is given, not on every interface', async () => {
    const server = await open();
    await expect(exchange('127.0.0.1', server.port, server.rotate(), 16, 5_000)).resolves.toBeUndefined();
    // Another address of this machine: a listener on every interface would accept it.
    expect(await acceptsConnection('127.0.0.2', server.port)).toBe(false);
    // A name is resolved to this node's address (a Kubernetes pod's service name, here localhost).
    expect(['127.0.0.1', '::1']).toContain(await bindAddress('localhost'));
  });

  it("acknowledges a peer with the current round's secret and drops one without it or with another", async () => {
    const server = await open();
    // Before its first round the server pairs with nobody.
    await expect(exchange('127.0.0.1', server.port, '0'.repeat(32), 64, 5_000)).rejects.toThrow(DROPPED);
    const secret = server.rotate();
    expect(secret).toMatch(/^[0-9a-f]{32}$/);
    await expect(exchange('127.0.0.1', server.port, secret, 64 * 1024, 5_000)).resolves.toBeUndefined();

    const other = (await open()).rotate();
    await expect(exchange('127.0.0.1', server.port, other, 1024, 5_000)).rejects.toThrow(DROPPED);
    // Nothing but payload: the first 32 bytes are not the secret.
    await expect(exchange('127.0.0.1', server.port, '', 4096, 5_000)).rejects.toThrow(DROPPED);
    // Fewer bytes than a secret, then silence: never acknowledged.
    await expect(exchange('127.0.0.1', server.port, secret.slice(0, 10), 0, 5_000)).rejects.toThrow(DROPPED);
  });

  it("refuses the previous round's secret once the next round's is minted", async () => {
    const server = await open();
    const round1 = server.rotate();
    await expect(exchange('127.0.0.1', server.port, round1, 1024, 5_000)).resolves.toBeUndefined();
    const round2 = server.rotate();
    expect(round2).not.toBe(round1);
    await expect(exchange('127.0.0.1', server.port, round1, 1024, 5_000)).rejects.toThrow(DROPPED);
    await expect(exchange('127.0.0.1', server.port, round2, 1024, 5_000)).resolves.toBeUndefined();
  });

  it('fails a check round whose peer secret is wrong, and passes it with the right one', async () => {
    const peer = await open();
    const secret = peer.rotate();
    const ok = await runCheckRound([{ host: '127.0.0.1', port: peer.port, secret }], 1024, 5_000, undefined);
    expect(ok).toMatchObject({ ok: true });
    const refused = await runCheckRound([{ host: '127.0.0.1', port: peer.port, secret: 'f'.repeat(32) }], 1024, 5_000, undefined);
    expect(refused).toMatchObject({ ok: false });
  });
});

describe("a node's part in a check", () => {
  /** Runs takePart against scripted answers; `step` sees each poll and answers it. */
  function part(step: (req: NodeCheckRequest, polls: NodeCheckRequest[]) => Promise<NodeCheckResponse> | NodeCheckResponse) {
    const polls: NodeCheckRequest[] = [];
    const ended = takePart({
      node: 3,
      incarnation: 0,
      host: '127.0.0.1',
      poll: async (req) => {
        polls.push(req);
        return step(req, polls);
      },
      wait: (ms) => new Promise((r) => setTimeout(r, ms)),
      pollMs: 5,
      exchangeTimeoutMs: 5_000,
      hook: undefined,
    });
    return { polls, ended };
  }

  it('opens its server at serve, mints a secret per round, refuses the old one, and closes at done', async () => {
    const seen: { round: number; port: number; secret: string }[] = [];
    let phase = 0;
    const { polls, ended } = part(async (req) => {
      if (phase === 0) return (phase = 1), { action: 'serve', session: 1, round: 1 };
      if (phase === 1) {
        // The secret it registers already pairs: a peer handed it may connect at once.
        const s = req.serving!;
        expect(s).toMatchObject({ session: 1, round: 1 });
        await expect(exchange('127.0.0.1', s.port, s.secret, 1024, 5_000)).resolves.toBeUndefined();
        seen.push(s);
        return (phase = 2), { action: 'serve', session: 1, round: 2 };
      }
      if (phase === 2) {
        const s = req.serving!;
        expect(s).toMatchObject({ session: 1, round: 2, port: seen[0]!.port });
        expect(s.secret).not.toBe(seen[0]!.secret);
        // A peer still using round 1's secret is dropped; round 2's pairs.
        await expect(exchange('127.0.0.1', s.port, seen[0]!.secret, 1024, 5_000)).rejects.toThrow(DROPPED);
        await expect(exchange('127.0.0.1', s.port, s.secret, 1024, 5_000)).resolves.toBeUndefined();
        seen.push(s);
        return (phase = 3), { action: 'done', verdict: 'ok', hold: false };
      }
      throw new Error('polled after done');
    });
    expect(await ended).toEqual({ action: 'done', verdict: 'ok', hold: false });
    expect(polls.map((p) => p.serving?.round)).toEqual([undefined, 1, 2]);
    // Its part is over: nothing listens on the port any more.
    await expect(exchange('127.0.0.1', seen[1]!.port, seen[1]!.secret, 16, 5_000)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('probes its peers with the secrets it is handed and reports the round', async () => {
    const peer = await ExchangeServer.open('127.0.0.1');
    const secret = peer.rotate();
    const answers: NodeCheckResponse[] = [
      { action: 'wait' },
      { action: 'serve', session: 4, round: 1 },
      { action: 'probe', round: 1, probeBytes: 2048, peers: [{ node: 5, host: '127.0.0.1', port: peer.port, secret }] },
      { action: 'skip' },
    ];
    const { polls, ended } = part(() => answers.shift()!);
    expect(await ended).toEqual({ action: 'skip' });
    peer.close();
    expect(polls[3]).toMatchObject({ serving: { session: 4, round: 1 }, result: { round: 1, ok: true } });
  });

  it('closes its server when a poll fails (the agent ending)', async () => {
    let port = 0;
    const { ended } = part((req) => {
      if (!req.serving) return { action: 'serve', session: 1, round: 1 };
      port = req.serving.port;
      throw new Error('agent ending');
    });
    await expect(ended).rejects.toThrow(/agent ending/);
    await expect(exchange('127.0.0.1', port, '0'.repeat(32), 16, 5_000)).rejects.toThrow(/ECONNREFUSED/);
  });
});
