// The kubernetes backend's door: what workers and tests may use.
import type { RoverConfig } from '../../common/config.ts';
import type { Logger } from '../../common/logger.ts';
import type { Store } from '../../store/index.ts';
import { KubernetesBackend } from './kubernetesBackend.ts';
import { loadKubeConfig } from './kubeClient.ts';

export { KubernetesBackend } from './kubernetesBackend.ts';
export { loadKubeConfig } from './kubeClient.ts';
export * from './manifests.ts';
export { podEnd } from './podStatus.ts';
export { PodWatch } from './podWatch.ts';

/** The backend when the config names a cluster (kubeconfig or in-cluster), else undefined. */
export function createKubernetesBackend(config: RoverConfig, store: Store, logger: Logger): KubernetesBackend | undefined {
  const kubeConfig = loadKubeConfig(config.kubernetes);
  if (!kubeConfig) return undefined;
  return new KubernetesBackend({
    kubeConfig,
    store,
    logger,
    agentCommand: config.kubernetes.agentCommand,
    terminationGraceMs: config.timing.shutdownGraceMs,
  });
}
