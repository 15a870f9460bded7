// Entry point of the Rover API process.
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { onShutdown } from '../common/shutdown.ts';
import { openStore } from '../store/index.ts';
import { buildApi } from './server.ts';

const config = loadConfig();
const logger = createLogger('rover-api', config.logLevel);
const store = await openStore(config.storeUrl, { log: (msg) => logger.info(msg) });
const app = await buildApi({ config, store, logger });
await app.listen({ host: config.api.host, port: config.api.port });
logger.info({ url: config.api.url }, 'rover API listening');
onShutdown(logger, async () => {
  await app.close();
  await store.close();
});
