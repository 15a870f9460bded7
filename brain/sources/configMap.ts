// A Kubernetes ConfigMap as a Brain configuration source: `name=configmap:<namespace>/<name>` in
// ROVER_BRAIN_SOURCES. Every data key ending in .yaml/.yml holds one configuration, a list, or
// {configs: [...]}, read in key order; any broken key fails the whole read (the sync workflow
// then keeps the last good snapshot).
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { parseDocument } from 'yaml';
import { loadKubeConfig, statusOf, type KubeConnection } from '../../cluster/kubernetes/kubeClient.ts';
import { BrainConfigError, checkUniqueNames, parseBrainConfigs, type BrainConfigInput } from '../config/schema.ts';
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

  async read(): Promise<BrainConfigInput[]> {
    const where = `${this.namespace}/${this.configMap}`;
    let data: Record<string, string>;
    try {
      const cm = await this.core.readNamespacedConfigMap({ name: this.configMap, namespace: this.namespace });
      data = cm.data ?? {};
    } catch (err) {
      const status = statusOf(err);
      throw new BrainConfigError(`configmap ${where}: ${status === 404 ? 'not found' : `cannot read it: ${(err as Error).message}`}`);
    }
    const configs: BrainConfigInput[] = [];
    for (const key of Object.keys(data).filter((k) => /\.ya?ml$/i.test(k)).sort()) {
      const doc = parseDocument(data[key]!);
      if (doc.errors.length > 0) {
        const e = doc.errors[0]!;
        const line = e.linePos?.[0] ? `:${e.linePos[0].line}:${e.linePos[0].col}` : '';
        throw new BrainConfigError(`configmap ${where} key ${key}${line}: invalid YAML: ${e.message.split('\n')[0]}`);
      }
      const value: unknown = doc.toJS();
      if (value === null || value === undefined) continue;
      configs.push(...parseBrainConfigs(value, `configmap ${where} key ${key}`));
    }
    checkUniqueNames(configs, `configmap ${where}`);
    return configs;
  }
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
