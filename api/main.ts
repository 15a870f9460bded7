// Entry point of the Rover API process.
import { loadConfig } from '../common/config.ts';
import { withOperatorToken } from '../common/operatorToken.ts';
import { createLogger } from '../common/logger.ts';
import { onShutdown } from '../common/shutdown.ts';
import { openStore } from '../store/index.ts';
import { buildApi } from './server.ts';

// The operator's requests to the Brain (rover brain …, the worker's plans) carry this token.
const config = withOperatorToken(loadConfig(), { create: true });
const logger = createLogger('rover-api', config.logLevel);
const store = await openStore(config.storeUrl, { log: (msg) => logger.info(msg) });
const app = await buildApi({ config, store, logger });
await app.listen({ host: config.api.host, port: config.api.port });
logger.info({ url: config.api.url }, 'rover API listening');
onShutdown(logger, async () => {
  await app.close();
  await store.close();
});
