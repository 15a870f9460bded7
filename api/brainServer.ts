// The Brain as its own listener (api/brainMain.ts): the /brain/v1 routes plus health, so heavy
// optimization can run apart from the agent-facing API.
import { createHttpApp, type HttpAppDeps } from './app.ts';
import { registerBrainRoutes } from './brainRoutes.ts';

export async function buildBrainApi(deps: HttpAppDeps) {
  const app = createHttpApp(deps, 'Brain');
  registerBrainRoutes(app, deps.store, deps.config.operatorToken);
  return app;
}
