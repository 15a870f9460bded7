// HTTP routes of the master service for agents: /v1/jobs/:job/… with the job's bearer token.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { agentEvent, heartbeatRequest, joinRequest, nodeReport, registerRequest } from '../common/protocol.ts';
import { nodeCheckRequest } from '../common/nodeCheckProtocol.ts';
import { bearerToken, namedNode } from './auth.ts';
import { parseInput } from './errors.ts';
import type { MasterService } from './master.ts';

const jobParams = z.strictObject({ job: z.string().min(1).max(253) });
const roundParams = z.strictObject({ job: z.string().min(1).max(253), round: z.coerce.number().int().min(1) });
const roundQuery = z.strictObject({
  node: z.coerce.number().int().min(0),
  incarnation: z.coerce.number().int().min(0),
});


export function registerMasterRoutes(app: FastifyInstance, master: MasterService): void {
  const job = async (request: FastifyRequest) => {
    const { job: jobId } = parseInput(jobParams, request.params, 'path');
    return master.authorize(jobId, bearerToken(request), namedNode(request));
  };

  app.post('/v1/jobs/:job/nodes/register', async (request) => {
    const j = await job(request);
    await master.register(j, parseInput(registerRequest, request.body, 'body'));
    return { ok: true };
  });

  app.post('/v1/jobs/:job/rendezvous/join', async (request) => {
    const j = await job(request);
    return { round: await master.join(j, parseInput(joinRequest, request.body, 'body')) };
  });

  app.get('/v1/jobs/:job/rendezvous/:round', async (request) => {
    const { job: jobId, round } = parseInput(roundParams, request.params, 'path');
    const j = await master.authorize(jobId, bearerToken(request), namedNode(request));
    const { node, incarnation } = parseInput(roundQuery, request.query, 'query');
    return master.roundStatus(j, round, node, incarnation);
  });

  app.post('/v1/jobs/:job/nodes/heartbeat', async (request) => {
    const j = await job(request);
    return master.heartbeat(j, parseInput(heartbeatRequest, request.body, 'body'));
  });

  app.post('/v1/jobs/:job/nodes/events', async (request) => {
    const j = await job(request);
    await master.recordAgentEvent(j, parseInput(agentEvent, request.body, 'body'));
    return { ok: true };
  });

  app.post('/v1/jobs/:job/nodes/check', async (request) => {
    const j = await job(request);
    return master.nodeCheck(j, parseInput(nodeCheckRequest, request.body, 'body'));
  });

  app.post('/v1/jobs/:job/nodes/report', async (request) => {
    const j = await job(request);
    return master.report(j, parseInput(nodeReport, request.body, 'body'));
  });
}
