// Entry point of the k8s monitor process (deploy/kubernetes/brain.yaml): needs ROVER_KUBECONFIG
// or ROVER_KUBERNETES_IN_CLUSTER=true, and the store URL.
import { loadKubeConfig } from '../cluster/kubernetes/kubeClient.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { openStore } from '../store/index.ts';
import { K8sMonitor } from './k8sMonitor.ts';

const config = loadConfig();
const logger = createLogger('rover-k8s-monitor', config.logLevel);
const kubeConfig = loadKubeConfig(config.kubernetes);
if (!kubeConfig) {
  logger.fatal('no cluster configured: set ROVER_KUBECONFIG or ROVER_KUBERNETES_IN_CLUSTER=true');
  process.exit(2);
}
const store = await openStore(config.storeUrl, { log: (msg) => logger.info(msg) });
const monitor = new K8sMonitor({ kubeConfig, store, logger });
monitor.start();
logger.info('k8s monitor running');
await new Promise<void>((resolve) => {
  process.once('SIGTERM', resolve);
  process.once('SIGINT', resolve);
});
await monitor.stop();
await store.close();
logger.info('k8s monitor stopped');
