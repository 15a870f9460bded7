// Load shedding for a Rover HTTP listener. A request is "in flight" from its arrival until its
// answer is sent or its client goes. Above the limit a new request is answered 429 with
// Retry-After at once, before any store work: an overloaded API that queued instead kept serving
// requests whose clients had already timed out (issue 14), and every retry made the queue longer.
// A request whose client has gone is dropped before any store work. A long poll that is waiting
// (api/longPoll.ts) does not count: it holds a socket and a timer, not the store, and counting
// it would let a thousand waiting agents starve every other request.
// The count is this process's only: each replica sheds its own load, nothing is shared.
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

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

export class InFlightGate {
  private count = 0;

  constructor(readonly max: number) {}

  /** Requests at work now (waiting long polls excluded). */
  get inFlight(): number {
    return this.count;
  }

  /** Installs the hooks on `app`: admission in onRequest, a second look for a gone client in preHandler. */
  install(app: FastifyInstance): void {
    app.addHook('onRequest', async (request, reply) => {
      if (dropIfGone(request, reply)) return reply;
      if (EXEMPT.has(request.routeOptions.url ?? '')) return;
      if (this.count >= this.max) {
        return reply
          .status(429)
          .header('retry-after', String(RETRY_AFTER_S))
          .send({
            error: 'overloaded',
            message: `the API is busy (${this.count} requests in flight, limit ${this.max}: ROVER_API_MAX_IN_FLIGHT); retry after ${RETRY_AFTER_S} s`,
          });
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
