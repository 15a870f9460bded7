// HTTP routes of the agents' service (api/agentService.ts): /v1/jobs/:job/… with the job's bearer token.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { agentEvent, joinRequest, nodeReport, registerRequest } from '../common/protocol.ts';
import { nodeCheckRequest } from '../common/nodeCheckProtocol.ts';
import { bearerToken, namedNode } from './auth.ts';
import { parseInput } from './errors.ts';
import type { AgentService } from './agentService.ts';
import { MAX_WAIT_MS, type LongPolls } from './longPoll.ts';
import { setWaiting } from './overload.ts';

const jobParams = z.strictObject({ job: z.string().min(1).max(253) });
const roundParams = z.strictObject({ job: z.string().min(1).max(253), round: z.coerce.number().int().min(1) });
const roundQuery = z.strictObject({
  node: z.coerce.number().int().min(0),
  incarnation: z.coerce.number().int().min(0),
  /** Long poll: hold the answer while the round is open, up to this long. 0 (default): answer now. */
  waitMs: z.coerce.number().int().min(0).max(MAX_WAIT_MS).default(0),
});

/** What the long polls of one round share (api/longPoll.ts); a decision on the round nudges it. */
export const roundPollKey = (jobId: string, round: number) => `round ${jobId} ${round}`;

/** What a job's held heartbeats share: its latest round; a round opened by a report nudges it. */
export const latestRoundPollKey = (jobId: string) => `latest round ${jobId}`;

export function registerAgentRoutes(app: FastifyInstance, agents: AgentService, polls: LongPolls): void {
  const job = async (request: FastifyRequest) => {
    const { job: jobId } = parseInput(jobParams, request.params, 'path');
    return agents.authorize(jobId, bearerToken(request), namedNode(request));
  };

  app.post('/v1/jobs/:job/nodes/register', async (request) => {
    const j = await job(request);
    await agents.register(j, parseInput(registerRequest, request.body, 'body'));
    return { ok: true };
  });

  app.post('/v1/jobs/:job/rendezvous/join', async (request) => {
    const j = await job(request);
    return { round: await agents.join(j, parseInput(joinRequest, request.body, 'body')) };
  });

  // Round status; with waitMs a long poll that answers once the round closes or fails (or the job
  // ends), else 'open' after waitMs. Waiting, it re-reads the job's and the round's rows, one read
  // per interval shared by every waiting agent of the round in this process (api/longPoll.ts).
  app.get('/v1/jobs/:job/rendezvous/:round', async (request) => {
    const { job: jobId, round } = parseInput(roundParams, request.params, 'path');
    const authorize = () => agents.authorize(jobId, bearerToken(request), namedNode(request));
    const j = await authorize();
    const { node, incarnation, waitMs } = parseInput(roundQuery, request.query, 'query');
    const status = await agents.roundStatus(j, round, node, incarnation);
    if (status.status !== 'open' || waitMs === 0) return status;
    const seen = await polls.wait(request, { key: roundPollKey(jobId, round), read: () => agents.roundRows(j, round), ready: (rows) => rows.settled, waitMs });
    // Settled: answered from the shared read and this node's member row. Else (the wait ran out,
    // the server is closing, the job is gone) the way any poll is answered, the job read again.
    if (seen?.job) return agents.roundAnswer(seen.job, seen.round, round, node, incarnation);
    return agents.roundStatus(await authorize(), round, node, incarnation);
  });

  // Shed first under overload (api/overload.ts): a heartbeat comes again on its own a beat later.
  // With waitMs and nothing to ask of the node, a long poll: held until a newer round opens (one
  // read of the job's latest round per interval, shared by the job's held heartbeats in this
  // process) or waitMs passes, then answered as it was on arrival. Its store work is done on arrival,
  // in its job's batch (AgentService.heartbeat).
  app.post('/v1/jobs/:job/nodes/heartbeat', { config: { shedFirst: true } }, async (request) => {
    const { job: jobId } = parseInput(jobParams, request.params, 'path');
    const call = { jobId, token: bearerToken(request), ref: namedNode(request), body: request.body };
    const { job: j, req, reply } = await agents.heartbeat(call, (waiting) => setWaiting(request, waiting));
    const waitMs = Math.min(req.waitMs ?? 0, MAX_WAIT_MS);
    if (reply.action !== 'none' || reply.captureStacks !== undefined || reply.nodeCheck || waitMs === 0) return reply;
    const newer = await polls.wait(request, {
      key: latestRoundPollKey(j.id),
      read: () => agents.latestRound(j),
      ready: (latest) => latest !== undefined && latest.round > req.round,
      waitMs,
    });
    return newer ? agents.heldHeartbeatReply(j, req, newer) : reply;
  });

  app.post('/v1/jobs/:job/nodes/events', async (request) => {
    const j = await job(request);
    await agents.recordAgentEvent(j, parseInput(agentEvent, request.body, 'body'));
    return { ok: true };
  });

  app.post('/v1/jobs/:job/nodes/check', async (request) => {
    const j = await job(request);
    return agents.nodeCheck(j, parseInput(nodeCheckRequest, request.body, 'body'));
  });

  app.post('/v1/jobs/:job/nodes/report', async (request) => {
    const j = await job(request);
    return agents.report(j, parseInput(nodeReport, request.body, 'body'));
  });
}
