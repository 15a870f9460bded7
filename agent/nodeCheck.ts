// The agent's side of the pre-flight node check (api/nodeCheck.ts coordinates): an exchange
// server that stays open while the agent lives (so a relaunched node can pair with a node that
// already passed), a timed compute probe, and a TCP exchange of probeBytes with each peer.
// Test hook: ROVER_TEST_NODE_CHECK_NODES="1:fail,2:slow" makes incarnation 0 of those nodes fail
// or run slowly (a relaunched incarnation is healthy).
import { createHash } from 'node:crypto';
import { connect, createServer, type Server } from 'node:net';
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

/** Accepts exchanges: reads until the peer half-closes, then answers one byte. */
export async function startExchangeServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.on('data', () => {});
    socket.on('end', () => socket.end('k'));
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('exchange server has no port');
  server.unref();
  return { server, port: address.port };
}

/** Sends `bytes` to the peer and waits for its acknowledgement. */
export function exchange(host: string, port: number, bytes: number, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => socket.destroy(new Error(`exchange with ${host}:${port} timed out`)), timeoutMs);
    let acked = false;
    socket.once('connect', () => socket.end(Buffer.alloc(bytes, 1)));
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
  peers: { host: string; port: number }[],
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
    for (const p of peers) await exchange(p.host, p.port, probeBytes, timeoutMs);
    return { ok: true, seconds: seconds() };
  } catch (err) {
    return { ok: false, seconds: seconds(), error: (err as Error).message.slice(0, 1000) };
  }
}
