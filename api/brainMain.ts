// Entry point of the standalone Brain HTTP process (ROVER_BRAIN_HOST/ROVER_BRAIN_PORT). It also
// applies the history retention: samples and job summaries older than ROVER_METRICS_RETENTION_MS go.
import { loadConfig } from '../common/config.ts';
import { withOperatorToken } from '../common/operatorToken.ts';
import { createLogger } from '../common/logger.ts';
import { onShutdown } from '../common/shutdown.ts';
import { openStore } from '../store/index.ts';
import { buildBrainApi } from './brainServer.ts';

const PRUNE_EVERY_MS = 10 * 60 * 1000;

// The operator's requests to the Brain (rover brain …, the worker's plans) carry this token.
const config = withOperatorToken(loadConfig(), { create: true });
const logger = createLogger('rover-brain', config.logLevel);
const store = await openStore(config.storeUrl, { log: (msg) => logger.info(msg) });
const app = await buildBrainApi({ config, store, logger });
await app.listen({ host: config.brain.host, port: config.brain.port });
logger.info({ url: `http://${config.brain.host}:${config.brain.port}` }, 'rover brain listening');

const prune = async () => {
  const cutoff = Date.now() - config.brain.retentionMs;
  try {
    const samples = await store.metrics.deleteOlderThan(cutoff);
    const jobs = await store.jobHistory.deleteOlderThan(cutoff);
    if (samples || jobs) logger.info({ samples, jobs, cutoff }, 'retention: old history deleted');
  } catch (err) {
    logger.warn({ err }, 'retention: pruning failed; will retry');
  }
};
void prune();
const timer = setInterval(() => void prune(), PRUNE_EVERY_MS);
onShutdown(logger, async () => {
  clearInterval(timer);
  await app.close();
  await store.close();
});
