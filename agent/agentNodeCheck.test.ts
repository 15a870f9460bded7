// An agent's node-check listener over real sockets, against a real (fake) API over HTTP: it
// listens only while the node takes part in a check, with a fresh secret per round; a node that
// passed opens a fresh one when its heartbeat reply says a session needs it as a peer.
import { pino } from 'pino';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { NodeCheckRequest, NodeCheckResponse } from '../common/nodeCheckProtocol.ts';
import { Agent } from './agent.ts';
import { HttpApiClient } from './apiClient.ts';
import { exchange } from './nodeCheck.ts';
import { parseAgentSettings } from './settings.ts';
import { FakeApi } from './testing.ts';
import { waitUntil } from '../test/waits.ts';

const DROPPED = /closed without acknowledging|ECONNRESET|EPIPE/;

let api: FakeApi;
let agent: Agent | undefined;
let exit: Promise<number> | undefined;
beforeEach(async () => {
  api = await new FakeApi().start();
});
afterEach(async () => {
  agent?.terminate('SIGTERM');
  await exit;
  expect(api.invalid).toEqual([]);
  await api.close();
});

function startAgent(): void {
  const settings = parseAgentSettings({
    ROVER_API_URL: api.url,
    ROVER_JOB: api.job,
    ROVER_NODE: '0',
    ROVER_INCARNATION: '0',
    ROVER_TOKEN: api.token,
    ROVER_NPROC_PER_NODE: '1',
    // Trains until stopped, so the node is live when a later session needs it.
    ROVER_ENTRYPOINT: JSON.stringify({ command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000);'] }),
    ROVER_MAX_PROCESS_RESTARTS: '0',
    ROVER_HEARTBEAT_INTERVAL_MS: '50',
    ROVER_SHUTDOWN_GRACE_MS: '2000',
    ROVER_HOST: '127.0.0.1',
    ROVER_LOG_LEVEL: 'silent',
  });
  agent = new Agent({
    settings,
    api: new HttpApiClient({ baseUrls: settings.apiUrls, job: settings.job, token: settings.token }),
    log: pino({ level: 'silent' }),
    backoff: { baseMs: 5, capMs: 50 },
  });
  exit = agent.run();
}

/** The server the agent registered for a round of a session, once it polls with it. */
const registered = (session: number, round: number) =>
  waitUntil(() => api.nodeChecks.find((c) => c.serving?.session === session && c.serving.round === round)?.serving, `a server for session ${session} round ${round}`, 10_000);

it("listens only while it takes part, with a fresh secret per round, and refuses an earlier round's", async () => {
  /** Where the scripted check stands; the test moves it on. */
  let stage: 'round1' | 'round2' | 'passed' | 'peer' | 'peerDone' = 'round1';
  let wanted = false;
  api.heartbeatReply = () => (wanted ? { action: 'none', nodeCheck: true } : { action: 'none' });
  api.nodeCheckReply = (req: NodeCheckRequest): NodeCheckResponse => {
    const at = req.serving && `${req.serving.session}/${req.serving.round}`;
    if (stage === 'round1') return at === '1/1' ? { action: 'wait' } : { action: 'serve', session: 1, round: 1 };
    if (stage === 'round2') return at === '1/2' ? { action: 'wait' } : { action: 'serve', session: 1, round: 2 };
    if (stage === 'peer') return at === '2/1' ? { action: 'wait' } : { action: 'serve', session: 2, round: 1 };
    return { action: 'done', verdict: 'ok', hold: false };
  };
  startAgent();

  const first = await registered(1, 1);
  await expect(exchange('127.0.0.1', first.port, first.secret, 4096, 5_000)).resolves.toBeUndefined();
  stage = 'round2';
  const second = await registered(1, 2);
  expect(second.port).toBe(first.port);
  await expect(exchange('127.0.0.1', second.port, first.secret, 4096, 5_000)).rejects.toThrow(DROPPED);
  await expect(exchange('127.0.0.1', second.port, second.secret, 4096, 5_000)).resolves.toBeUndefined();

  // Passed: the server closes and the node goes on to train.
  stage = 'passed';
  await waitUntil(() => api.joins.length > 0, 'the rendezvous join', 10_000);
  await expect(exchange('127.0.0.1', second.port, second.secret, 16, 5_000)).rejects.toThrow(/ECONNREFUSED/);

  // A relaunched node's session needs it as a peer: its heartbeat reply says so.
  stage = 'peer';
  wanted = true;
  const peer = await registered(2, 1);
  expect(peer.secret).not.toBe(second.secret);
  await expect(exchange('127.0.0.1', peer.port, second.secret, 4096, 5_000)).rejects.toThrow(DROPPED);
  await expect(exchange('127.0.0.1', peer.port, peer.secret, 4096, 5_000)).resolves.toBeUndefined();
  stage = 'peerDone';
  wanted = false;
  await waitUntil(async () => {
    const refused = await exchange('127.0.0.1', peer.port, peer.secret, 16, 5_000).then(
      () => false,
      (err: Error) => /ECONNREFUSED/.test(err.message),
    );
    return refused;
  }, 'the peer server to close', 10_000);
  // It trained on throughout.
  expect(api.reports).toEqual([]);
});
