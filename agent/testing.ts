// Test helpers for the agent: a minimal real API over HTTP, a condition waiter, an output sink.
import { nodeCheckRequest, type NodeCheckRequest, type NodeCheckResponse } from '../common/nodeCheckProtocol.ts';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import type { z } from 'zod';
import {
  agentEvent,
  heartbeatRequest,
  joinRequest,
  nodeReport,
  registerRequest,
  type AgentEvent,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JoinRequest,
  type NodeReport,
} from '../common/protocol.ts';

/** A writable stream that remembers every line written to it. */
export function lineSink(): { stream: PassThrough; lines: () => string[] } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, lines: () => text.split('\n').filter(Boolean) };
}

/** True while a process with this pid exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A one-node API: every join opens a new round, which is `open` on its first poll and then
 * closes with this node as group rank 0. Tests steer it through the public fields.
 */
export class FakeApi {
  readonly token = 'test-token';
  readonly job = 'job-test';
  readonly joins: JoinRequest[] = [];
  /** When each join arrived (epoch ms), in order. */
  readonly joinedAt: number[] = [];
  readonly heartbeats: HeartbeatRequest[] = [];
  readonly reports: NodeReport[] = [];
  readonly events: AgentEvent[] = [];
  /** Whether the API charges a process failure to the node (false: a consequence of another node's). */
  charge: (report: NodeReport) => boolean = () => true;
  private charged = 0;
  /** Answer to each heartbeat. */
  heartbeatReply: (hb: HeartbeatRequest) => HeartbeatResponse = () => ({ action: 'none' });
  /** Node-check polls, in order, and the answer to each (default: skip the check). */
  readonly nodeChecks: NodeCheckRequest[] = [];
  nodeCheckReply: (req: NodeCheckRequest) => NodeCheckResponse = () => ({ action: 'skip' });
  /** While true, every request is answered 404, as if the job had been deleted. */
  jobGone = false;
  /** Answer this many of the next requests with 503. */
  unavailableFor = 0;
  /** Request bodies that broke the wire contract (answered 400). */
  readonly invalid: string[] = [];
  /** Requests answered 503, in order, as "METHOD /path". */
  readonly unavailable: string[] = [];
  private round = 0;
  private readonly polled = new Set<number>();
  private server: Server | null = null;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void this.handle(req).then(([status, body]) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  private async handle(req: IncomingMessage): Promise<[number, unknown]> {
    let raw = '';
    for await (const chunk of req) raw += String(chunk);
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname.replace(`/v1/jobs/${this.job}`, '');
    if (this.unavailableFor > 0) {
      this.unavailableFor--;
      this.unavailable.push(`${req.method} ${path}`);
      return [503, { error: 'unavailable' }];
    }
    if (this.jobGone) return [404, { error: `no job ${this.job}` }];
    if (req.headers.authorization !== `Bearer ${this.token}`) return [403, { error: 'bad token' }];
    const body = raw ? (JSON.parse(raw) as unknown) : undefined;
    // Bodies are checked against the wire contract; a violation fails the test through `invalid`.
    const parse = <S extends z.ZodType>(schema: S): z.infer<S> | null => {
      const parsed = schema.safeParse(body);
      if (!parsed.success) this.invalid.push(`${path}: ${parsed.error.message}`);
      return parsed.success ? parsed.data : null;
    };
    if (path === '/nodes/register') return parse(registerRequest) ? [200, {}] : [400, {}];
    if (path === '/rendezvous/join') {
      const join = parse(joinRequest);
      if (!join) return [400, {}];
      this.joins.push(join);
      this.joinedAt.push(Date.now());
      return [200, { round: ++this.round }];
    }
    const poll = /^\/rendezvous\/(\d+)$/.exec(path);
    if (poll) {
      const round = Number(poll[1]);
      if (!this.polled.has(round)) {
        this.polled.add(round);
        return [200, { status: 'open', round }];
      }
      const masterPort = this.joins.at(-1)!.freePort;
      return [200, { status: 'closed', round, groupRank: 0, nodes: 1, masterAddr: '127.0.0.1', masterPort }];
    }
    if (path === '/nodes/heartbeat') {
      const hb = parse(heartbeatRequest);
      if (!hb) return [400, {}];
      this.heartbeats.push(hb);
      return [200, this.heartbeatReply(hb)];
    }
    if (path === '/nodes/report') {
      const report = parse(nodeReport);
      if (!report) return [400, {}];
      this.reports.push(report);
      if (report.kind !== 'process_failed') return [200, {}];
      const charged = this.charge(report);
      if (charged) this.charged++;
      return [200, { charged, failures: this.charged }];
    }
    if (path === '/nodes/events') {
      const event = parse(agentEvent);
      if (!event) return [400, {}];
      this.events.push(event);
      return [200, {}];
    }
    if (path === '/nodes/check') {
      const check = parse(nodeCheckRequest);
      if (!check) return [400, {}];
      this.nodeChecks.push(check);
      return [200, this.nodeCheckReply(check)];
    }
    return [404, { error: `no route ${path}` }];
  }
}
