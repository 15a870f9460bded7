// The agent's side of the pre-flight node check (api/nodeCheck.ts coordinates, the state machine
// is common/nodeCheckSession.ts): an exchange server, a timed compute probe, and a TCP exchange of
// probeBytes with each peer. The server listens on the node's own address only, and lives only
// while this node takes part in a check session: takePart opens it when the API first answers
// `serve` and closes it when the API answers done or skip (passed, held or skipped), or when the
// agent ends. A node that passed is called in again by its heartbeat reply (`nodeCheck: true`)
// when a relaunched node's session needs it as a peer; it takes part the same way, with a fresh
// server, until that round no longer needs it.
// The pairing secret is per round: at each `serve` (a new session or round) the server mints a
// fresh random secret and from then on answers only a peer that sends it first; the agent then
// registers it with its next poll. So the server already accepts a secret before the API can hand
// it to any peer, and the API hands a peer only secrets registered for the current round: a peer
// still using an earlier round's secret is dropped unanswered. Why this cannot deadlock: a
// node's registration waits on nobody (it follows the API's `serve` at once), and the API hands a
// member its peers once they registered, or without the silent ones after half the round's
// timeout (common/nodeCheckSession.ts); a round ends at its timeout whatever happens.
// Test hook: ROVER_TEST_NODE_CHECK_NODES="1:fail,2:slow" makes incarnation 0 of those nodes fail
// or run slowly (a relaunched incarnation is healthy).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { connect, createServer, isIP, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeCheckRequest, NodeCheckResponse } from '../common/nodeCheckProtocol.ts';

const COMPUTE_ROUNDS = 16;
const COMPUTE_BLOCK = Buffer.alloc(256 * 1024, 7);
/** Extra time of a node the test hook makes slow. */
const SLOW_HOOK_MS = 1500;

export type CheckHook = 'fail' | 'slow' | undefined;

/** Reads this node's hook from ROVER_TEST_NODE_CHECK_NODES; only incarnation 0 is affected. */
export function checkHook(env: NodeJS.ProcessEnv, node: number, incarnation: number): CheckHook {
  if (incarnation !== 0) return undefined;
  for (const part of (env.ROVER_TEST_NODE_CHECK_NODES ?? '').split(',')) {
    const [id, mode] = part.trim().split(':');
    if (Number(id) === node && (mode === 'fail' || mode === 'slow')) return mode;
  }
  return undefined;
}

/** Length in bytes of a pairing secret on the wire (hex of 16 random bytes). */
const SECRET_BYTES = 32;

/**
 * The address the exchange server binds: ROVER_HOST itself when it is an IP, else what the name
 * resolves to on this node (a Kubernetes pod's service name resolves to its own IP).
 */
export async function bindAddress(host: string): Promise<string> {
  if (isIP(host)) return host;
  return (await lookup(host)).address;
}

/**
 * Accepts exchanges on the node's address: a peer sends the current round's pairing secret, then
 * its bytes, then half-closes, and is acknowledged; a peer whose first SECRET_BYTES are not the
 * current secret (none before the first rotate, or an earlier round's) is dropped unanswered.
 */
export class ExchangeServer {
  private expected: Buffer | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async open(bindHost: string): Promise<ExchangeServer> {
    let self: ExchangeServer | undefined;
    const server = createServer((socket) => {
      self?.sockets.add(socket);
      socket.once('close', () => self?.sockets.delete(socket));
      let head = Buffer.alloc(0);
      let paired = false;
      socket.on('data', (chunk: Buffer) => {
        if (paired) return;
        head = Buffer.concat([head, chunk]);
        if (head.length < SECRET_BYTES) return;
        const expected = self?.expected;
        if (!expected || !timingSafeEqual(head.subarray(0, SECRET_BYTES), expected)) {
          socket.destroy();
          return;
        }
        paired = true;
      });
      socket.on('end', () => (paired ? socket.end('k') : socket.destroy()));
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, bindHost, () => resolve());
    });
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('exchange server has no port');
    server.unref();
    self = new ExchangeServer(server, address.port);
    return self;
  }

  /** A fresh random secret for a new round: from now on it alone pairs; the previous one no longer does. */
  rotate(): string {
    const secret = randomBytes(SECRET_BYTES / 2).toString('hex');
    this.expected = Buffer.from(secret, 'ascii');
    return secret;
  }

  /** Stops listening and drops the connections still open. */
  close(): void {
    this.expected = null;
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
  }
}

/** Sends the peer's pairing secret and `bytes` to it, and waits for its acknowledgement. */
export function exchange(host: string, port: number, secret: string, bytes: number, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => socket.destroy(new Error(`exchange with ${host}:${port} timed out`)), timeoutMs);
    let acked = false;
    socket.once('connect', () => socket.end(Buffer.concat([Buffer.from(secret, 'ascii'), Buffer.alloc(bytes, 1)])));
    socket.on('data', () => (acked = true));
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (acked) resolve();
      else reject(new Error(`peer ${host}:${port} closed without acknowledging`));
    });
  });
}

/** A fixed CPU workload (hashing), so nodes can be compared. */
export function computeProbe(): void {
  for (let i = 0; i < COMPUTE_ROUNDS; i++) createHash('sha256').update(COMPUTE_BLOCK).digest();
}

export interface RoundResult {
  ok: boolean;
  seconds: number;
  error?: string;
}

/** One round: the compute probe, then an exchange with each peer; failed when any part fails. */
export async function runCheckRound(
  peers: { host: string; port: number; secret: string }[],
  probeBytes: number,
  timeoutMs: number,
  hook: CheckHook,
): Promise<RoundResult> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  if (hook === 'fail') return { ok: false, seconds: seconds(), error: 'failed by ROVER_TEST_NODE_CHECK_NODES' };
  try {
    computeProbe();
    if (hook === 'slow') await sleep(SLOW_HOOK_MS);
    for (const p of peers) await exchange(p.host, p.port, p.secret, probeBytes, timeoutMs);
    return { ok: true, seconds: seconds() };
  } catch (err) {
    return { ok: false, seconds: seconds(), error: (err as Error).message.slice(0, 1000) };
  }
}

export interface CheckPart {
  node: number;
  incarnation: number;
  /** ROVER_HOST: what peers connect to; the server binds its address (bindAddress). */
  host: string;
  poll: (req: NodeCheckRequest) => Promise<NodeCheckResponse>;
  /** Waits between polls (abortable: it throws when the agent ends). */
  wait: (ms: number) => Promise<void>;
  pollMs: number;
  exchangeTimeoutMs: number;
  hook: CheckHook;
  onRound?: (round: number, peers: number[], result: RoundResult) => void;
}

export type CheckEnd = Extract<NodeCheckResponse, { action: 'done' | 'skip' }>;

/**
 * Takes part in the node check until the API answers done or skip, and returns that answer. The
 * exchange server opens at the first `serve`, gets a fresh secret at each `serve` for another
 * round, and closes when this returns or throws: it never outlives this node's part.
 */
export async function takePart(part: CheckPart): Promise<CheckEnd> {
  const { node, incarnation, host } = part;
  let server: ExchangeServer | undefined;
  let serving: NodeCheckRequest['serving'];
  let result: NodeCheckRequest['result'];
  try {
    for (;;) {
      const answer = await part.poll({ node, incarnation, host, ...(serving && { serving }), ...(result && { result }) });
      result = undefined;
      if (answer.action === 'done' || answer.action === 'skip') return answer;
      if (answer.action === 'wait') {
        await part.wait(part.pollMs);
      } else if (answer.action === 'serve') {
        if (serving?.session === answer.session && serving.round === answer.round) {
          // Already serving this round (the API has not seen it yet): say it again, not faster.
          await part.wait(part.pollMs);
          continue;
        }
        server ??= await ExchangeServer.open(await bindAddress(host));
        serving = { session: answer.session, round: answer.round, port: server.port, secret: server.rotate() };
      } else {
        const r = await runCheckRound(answer.peers, answer.probeBytes, part.exchangeTimeoutMs, part.hook);
        part.onRound?.(answer.round, answer.peers.map((p) => p.node), r);
        result = { round: answer.round, ...r };
      }
    }
  } finally {
    server?.close();
  }
}
