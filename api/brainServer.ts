// The Brain as its own listener (api/brainMain.ts): the /brain/v1 routes plus health, so heavy
// optimization can run apart from the agent-facing API.
import type { RoverConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import type { Store } from '../store/index.ts';
import { createHttpApp } from './app.ts';
import { registerBrainRoutes } from './brainRoutes.ts';

export async function buildBrainApi(deps: { config: RoverConfig; store: Store; logger: Logger }) {
  const app = createHttpApp(deps, 'Brain');
  registerBrainRoutes(app, deps.store, deps.config.operatorToken);
  return app;
}
