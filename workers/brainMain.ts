// Entry point of the Brain worker process: brainConfigSync workflows on `rover-brain`.
import { NativeConnection } from '@temporalio/worker';
import { registerConfigMapSource } from '../brain/sources/configMap.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { openStore } from '../store/index.ts';
import { startBrainWorker } from './brainWorker.ts';
import { temporalConnectionOptions } from '../common/temporalConnection.ts';

const config = loadConfig();
const logger = createLogger('rover-brain-worker', config.logLevel);
// `configmap:<namespace>/<name>` sources read through the worker's Kubernetes settings.
registerConfigMapSource(config.kubernetes);
const store = await openStore(config.storeUrl, { log: (msg) => logger.info(msg) });
const connection = await NativeConnection.connect(temporalConnectionOptions(config.temporal));
const worker = await startBrainWorker(config, store, connection, logger);
// The SDK's Runtime shuts the worker down on SIGINT/SIGTERM; run() then resolves.
await worker.run();
await connection.close();
await store.close();
logger.info('rover brain worker stopped');
