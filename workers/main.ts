// Entry point of the Rover worker process.
import { NativeConnection } from '@temporalio/worker';
import { createJobActivities, createOptimizerActivities } from '../activities/index.ts';
import { LocalBackend } from '../cluster/local/localBackend.ts';
import { RayBackend } from '../cluster/ray/index.ts';
import { createKubernetesBackend } from '../cluster/kubernetes/index.ts';
import { registerConfigMapSource } from '../brain/sources/configMap.ts';
import type { ClusterBackend } from '../cluster/types.ts';
import { loadConfig } from '../common/config.ts';
import { withOperatorToken } from '../common/operatorToken.ts';
import { createLogger } from '../common/logger.ts';
import { openStore } from '../store/index.ts';
import { createJobWorker } from './jobWorker.ts';
import { installWorkerTelemetry } from './telemetry.ts';
import { temporalConnectionOptions } from '../common/temporalConnection.ts';

// The worker asks the Brain for plans of any job: with the operator token, as it holds no job's token.
const config = withOperatorToken(loadConfig(), { create: true });
const logger = createLogger('rover-worker', config.logLevel);
// ROVER_BRAIN_SOURCES may name `configmap:<namespace>/<name>` sources.
registerConfigMapSource(config.kubernetes);
installWorkerTelemetry(config, logger);
const store = await openStore(config.storeUrl, { log: (msg) => logger.info(msg) });
const connection = await NativeConnection.connect(temporalConnectionOptions(config.temporal));
// Backends in a fixed order; a job picks one by spec.backend.
const kubernetes = createKubernetesBackend(config, store, logger.child({ backend: 'kubernetes' }));
const backends: ClusterBackend[] = [
  new LocalBackend(store, config.home),
  ...(kubernetes ? [kubernetes] : []),
  new RayBackend(store, config, logger.child({ backend: 'ray' })),
];
// The SDK's Runtime shuts the worker down on these signals; a waiting watchNodes hears them too and
// returns, so `rover down` does not wait out the worker's shutdown grace time.
const draining = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => draining.abort());
const activities = { ...createJobActivities({ store, backends, config, logger, draining: draining.signal }), ...createOptimizerActivities({ config, logger, store }) };
const worker = await createJobWorker({
  connection,
  namespace: config.temporal.namespace,
  taskQueue: config.temporal.taskQueue,
  activities,
});
logger.info({ address: config.temporal.address, taskQueue: config.temporal.taskQueue }, 'rover worker running');
// The SDK's Runtime shuts the worker down on SIGINT/SIGTERM; run() then resolves.
await worker.run();
await kubernetes?.close();
await connection.close();
await store.close();
logger.info('rover worker stopped');
