// A Kubernetes ConfigMap as a Brain configuration source: `name=configmap:<namespace>/<name>` in
// ROVER_BRAIN_SOURCES. Every data key ending in .yaml/.yml holds one configuration, a list, or
// {configs: [...]}, read in key order; a broken key or entry is rejected alone, the rest served.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig, statusOf, type KubeConnection } from '../../cluster/kubernetes/kubeClient.ts';
import { BrainConfigError, mergeReads, parseBrainConfigYaml, type SourceRead } from '../config/schema.ts';
import { registerSourceKind } from './registry.ts';
import type { ConfigSource } from './types.ts';

export class ConfigMapSource implements ConfigSource {
  readonly location: string;
  private readonly core: CoreV1Api;
  private readonly namespace: string;
  private readonly configMap: string;

  constructor(readonly name: string, location: string, kubeConfig: KubeConfig) {
    const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(location);
    if (!m) throw new BrainConfigError(`ROVER_BRAIN_SOURCES: source "${name}": configmap location must be <namespace>/<name> (got "${location}")`);
    [, this.namespace, this.configMap] = m as unknown as [string, string, string];
    this.location = `configmap ${location}`;
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  async read(): Promise<SourceRead> {
    const where = `${this.namespace}/${this.configMap}`;
    let data: Record<string, string>;
    try {
      const cm = await this.core.readNamespacedConfigMap({ name: this.configMap, namespace: this.namespace });
      data = cm.data ?? {};
    } catch (err) {
      const status = statusOf(err);
      throw new BrainConfigError(`configmap ${where}: ${status === 404 ? 'not found' : `cannot read it: ${(err as Error).message}`}`);
    }
    return configMapRead(where, data);
  }
}

/** The configurations of a ConfigMap's data: each .yaml/.yml key in key order, a bad key or entry rejected alone. */
export function configMapRead(where: string, data: Record<string, string>): SourceRead {
  const keys = Object.keys(data).filter((k) => /\.ya?ml$/i.test(k)).sort();
  return mergeReads(keys.map((key) => parseBrainConfigYaml(data[key]!, `configmap ${where} key ${key}`)));
}

/** Adds the `configmap` kind to the source registry, connecting with the worker's cluster settings. */
export function registerConfigMapSource(connection: KubeConnection): void {
  registerSourceKind('configmap', (def) => {
    const kubeConfig = loadKubeConfig(connection);
    if (!kubeConfig) {
      throw new BrainConfigError(`ROVER_BRAIN_SOURCES: source "${def.name}" reads a ConfigMap: set ROVER_KUBECONFIG or ROVER_KUBERNETES_IN_CLUSTER=true`);
    }
    return new ConfigMapSource(def.name, def.location, kubeConfig);
  });
}
