// The agent's side of the pre-flight node check (api/nodeCheck.ts coordinates): an exchange
// server, a timed compute probe, and a TCP exchange of probeBytes with each peer. The server
// listens on the node's own address only, and answers only a peer that first sends its pairing
// secret: a random secret of this server, which the API hands only to the peers it pairs with
// this node (they authenticate with the job's token). It closes when the check is skipped or the
// node is held; a node that passed keeps it open, since a relaunched node pairs with one later.
// The secret is the server's, not a round's, because the server must know it before any peer
// connects, and a peer may be told to connect before this node has polled for the round.
// Test hook: ROVER_TEST_NODE_CHECK_NODES="1:fail,2:slow" makes incarnation 0 of those nodes fail
// or run slowly (a relaunched incarnation is healthy).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { connect, createServer, isIP, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

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
 * Accepts exchanges on `bindHost`: a peer sends the pairing secret, then its bytes, then
 * half-closes; a peer whose first SECRET_BYTES are not the secret is dropped unanswered.
 * Returns the server, its port and its secret (for the node-check poll, which gives it to peers).
 */
export async function startExchangeServer(bindHost: string): Promise<{ server: Server; port: number; secret: string }> {
  const secret = randomBytes(SECRET_BYTES / 2).toString('hex');
  const expected = Buffer.from(secret, 'ascii');
  const server = createServer((socket) => {
    let head = Buffer.alloc(0);
    let paired = false;
    socket.on('data', (chunk: Buffer) => {
      if (paired) return;
      head = Buffer.concat([head, chunk]);
      if (head.length < SECRET_BYTES) return;
      if (!timingSafeEqual(head.subarray(0, SECRET_BYTES), expected)) {
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
  return { server, port: address.port, secret };
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
