// Entry point of the Rover worker process.
import { NativeConnection } from '@temporalio/worker';
import { createJobActivities } from '../activities/index.ts';
import { LocalBackend } from '../cluster/local/localBackend.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { openStore } from '../store/index.ts';
import { createJobWorker } from './jobWorker.ts';

const config = loadConfig();
const logger = createLogger('rover-worker', config.logLevel);
const store = await openStore(config.storeUrl, { log: (msg) => logger.info(msg) });
const connection = await NativeConnection.connect({ address: config.temporal.address });
const activities = createJobActivities({ store, backends: [new LocalBackend(store, config.home)], config, logger });
const worker = await createJobWorker({
  connection,
  namespace: config.temporal.namespace,
  taskQueue: config.temporal.taskQueue,
  activities,
});
logger.info({ address: config.temporal.address, taskQueue: config.temporal.taskQueue }, 'rover worker running');
// The SDK's Runtime shuts the worker down on SIGINT/SIGTERM; run() then resolves.
await worker.run();
await connection.close();
await store.close();
logger.info('rover worker stopped');
