// Load shedding for a Rover HTTP listener. A new request is answered 429 with Retry-After at once,
// before any store work, when this process is overloaded: an API that queued instead kept serving
// requests whose clients had already timed out (issue 14), and every retry made the queue longer.
// Overloaded means either of:
// - more requests in flight than the limit: from its arrival until its answer is sent or its
//   client goes. A long poll that is waiting (api/longPoll.ts) does not count: it holds a socket
//   and a timer, not the store, and counting it would let a thousand waiting agents starve every
//   other request. Nor does a heartbeat queued for its job's batch (api/groupCommit.ts): one
//   transaction serves the whole batch (counting each beat had 2,000 agents' heartbeats shed by the
//   thousand while the API used half a core). This is where a MySQL store's queue forms (each
//   request awaits the network);
// - an event loop that has not come round to its timers for longer than the lag limit. On SQLite
//   every request runs to its end synchronously, so requests are never in flight together: the
//   queue forms in the sockets instead, and the loop works through it for seconds without a
//   break (measured with 4,000 agents). A request met during such a stretch waited about as long.
// A route marked `config: { shedFirst: true }` (the agents' heartbeat: it comes again on its own
// a beat later) is shed at half those limits, so that under a sustained overload the capacity
// left goes to requests that move a job on (register, join, reports, trainers' shard leases).
// A request whose client has gone is dropped before any store work.
// Both measures are this process's only: each replica sheds its own load, nothing is shared.
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Shed this route's requests at half the limits (api/overload.ts). */
    shedFirst?: boolean;
  }
}

/** Seconds an overloaded API asks a client to wait (Retry-After); clients add jitter of up to as much again. */
export const RETRY_AFTER_S = 1;

/** Routes never shed: probes and scrapes must see the API alive while it sheds agents' requests. */
const EXEMPT = new Set(['/healthz', '/metrics']);

interface Slot {
  gate: InFlightGate;
  counted: boolean;
}

/** Requests admitted by a gate, by their raw request: a long poll marks itself waiting through it. */
const slots = new WeakMap<IncomingMessage, Slot>();

/** How often the loop-lag timer notes that the event loop came round. */
const LAG_TICK_MS = 50;

export interface GateLimits {
  /** Requests in flight at once (ROVER_API_MAX_IN_FLIGHT). */
  maxInFlight: number;
  /** Longest the event loop may go without running its timers (ROVER_API_MAX_LAG_MS). */
  maxLagMs: number;
}

export class InFlightGate {
  private count = 0;
  private loopSeen = performance.now();
  private lagTimer: NodeJS.Timeout | undefined;

  constructor(readonly limits: GateLimits) {}

  /** Requests at work now (waiting long polls excluded). */
  get inFlight(): number {
    return this.count;
  }

  /** How long the event loop has gone without running its timers, beyond their period (ms). */
  get lagMs(): number {
    return this.lagTimer ? Math.max(0, performance.now() - this.loopSeen - LAG_TICK_MS) : 0;
  }

  /** Installs the hooks on `app`: admission in onRequest, a second look for a gone client in preHandler. */
  install(app: FastifyInstance): void {
    this.lagTimer = setInterval(() => (this.loopSeen = performance.now()), LAG_TICK_MS).unref();
    app.addHook('onClose', async () => clearInterval(this.lagTimer));
    app.addHook('onRequest', async (request, reply) => {
      if (dropIfGone(request, reply)) return reply;
      if (EXEMPT.has(request.routeOptions.url ?? '')) return;
      const busy = this.busy(request.routeOptions.config?.shedFirst === true ? 0.5 : 1);
      if (busy) {
        return reply
          .status(429)
          .header('retry-after', String(RETRY_AFTER_S))
          .send({ error: 'overloaded', message: `the API is busy (${busy}); retry after ${RETRY_AFTER_S} s` });
      }
      const slot: Slot = { gate: this, counted: true };
      this.count++;
      slots.set(request.raw, slot);
      // 'close' comes once per response: sent, or its connection lost.
      reply.raw.once('close', () => {
        if (slot.counted) this.count--;
        slot.counted = false;
        slots.delete(request.raw);
      });
    });
    // The body has been read by now; a client that went meanwhile costs no store work either.
    app.addHook('preHandler', async (request, reply) => {
      if (dropIfGone(request, reply)) return reply;
    });
  }

  /** Why a new request must wait, or undefined when it may come in; `share`: the part of the limits it may use. */
  private busy(share: number): string | undefined {
    const maxInFlight = Math.max(1, Math.floor(this.limits.maxInFlight * share));
    const maxLagMs = this.limits.maxLagMs * share;
    const of = share < 1 ? ' (half the limit for this route)' : '';
    if (this.count >= maxInFlight) return `${this.count} requests in flight, limit ${maxInFlight}${of}: ROVER_API_MAX_IN_FLIGHT`;
    const lag = this.lagMs;
    if (lag > maxLagMs) return `working through a backlog: its event loop has not come round for ${Math.round(lag)} ms, limit ${maxLagMs}${of}: ROVER_API_MAX_LAG_MS`;
    return undefined;
  }

  /** See setWaiting below. */
  static setWaiting(request: FastifyRequest, waiting: boolean): void {
    const slot = slots.get(request.raw);
    if (!slot || slot.counted === !waiting) return;
    slot.counted = !waiting;
    slot.gate.count += waiting ? -1 : 1;
  }
}

/** Whether the client of `request` has gone (connection closed or reset). */
export function clientGone(request: FastifyRequest): boolean {
  return request.raw.destroyed || request.raw.socket?.destroyed === true;
}

/** Ends a request whose client has gone, without an answer nobody would read. */
function dropIfGone(request: FastifyRequest, reply: FastifyReply): boolean {
  if (!clientGone(request)) return false;
  request.log.debug({ url: request.url }, 'client gone before its request was served: dropped');
  reply.hijack();
  reply.raw.destroy();
  return true;
}

/**
 * Marks an admitted request as waiting (a long poll between its reads: not counted) or at work
 * again (counted; never refused, it was admitted). A request no gate admitted is left alone.
 */
export function setWaiting(request: FastifyRequest, waiting: boolean): void {
  InFlightGate.setWaiting(request, waiting);
}
