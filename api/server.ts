// The Rover API: the agents' service, health and metrics. Stateless; state is in the store.
import { createHttpApp, type HttpAppDeps } from './app.ts';
import { registerBrainRoutes } from './brainRoutes.ts';
import { registerConfigRoutes } from './configRoutes.ts';
import { AgentService } from './agentService.ts';
import { createApiMetrics } from './metrics.ts';
import { registerAgentRoutes, roundPollKey, latestRoundPollKey } from './agentRoutes.ts';
import { LongPolls } from './longPoll.ts';
import { LedgerService } from './ledger.ts';
import { registerTrainerRoutes } from './trainerRoutes.ts';
import { CheckpointDeletions, registerCheckpointDeletionRoutes } from './checkpointDeletions.ts';

export interface ApiDeps extends HttpAppDeps {
  /** Clock for rendezvous and heartbeat decisions; tests may pass their own. */
  now?: () => number;
  /** The long polls of this process (tests pass one to see that none is left waiting). */
  polls?: LongPolls;
}

export async function buildApi(deps: ApiDeps) {
  const app = createHttpApp(deps, 'API');
  const now = deps.now ?? Date.now;
  const metrics = createApiMetrics(deps.store, now);
  const registry = metrics.registry;
  metrics.instrument(app);

  // Long polls of this process; a round decided here wakes its own waiters at once.
  const polls = (deps.polls ?? new LongPolls()).install(app);
  const hooks = {
    ...metrics.hooks,
    roundDecided: (jobId: string, round: number) => polls.nudge(roundPollKey(jobId, round)),
    roundOpened: (jobId: string) => polls.nudge(latestRoundPollKey(jobId)),
  };
  const agents = new AgentService(deps.store, now, hooks, deps.config.operatorToken);
  registerAgentRoutes(app, agents, polls);
  // The Brain API is served here too (ROVER_BRAIN_URL defaults to this API); api/brainMain.ts runs it alone.
  registerBrainRoutes(app, deps.store, deps.config.operatorToken);
  const authorize = (jobId: string, token: string | undefined, ref?: Parameters<AgentService['authorize']>[2]) => agents.authorize(jobId, token, ref);
  registerTrainerRoutes(app, authorize, new LedgerService(deps.store, deps.now ?? Date.now));
  registerCheckpointDeletionRoutes(app, authorize, new CheckpointDeletions(deps.store));
  registerConfigRoutes(app, (jobId, token) => agents.authorize(jobId, token), deps.store, polls);
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
  return app;
}
