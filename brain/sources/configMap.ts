// A Kubernetes ConfigMap as a Brain configuration source: `name=configmap:<namespace>/<name>` in
// ROVER_BRAIN_SOURCES. Every data key ending in .yaml/.yml holds one configuration, a list, or
// {configs: [...]}, read in key order; a broken key or entry is rejected alone, the rest served.
// The source keeps a copy by list + watch (as the pod cache does, cluster/kubernetes/podWatch.ts),
// so a sync reads that copy instead of asking the apiserver every interval.
import { CoreV1Api, Watch, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { loadKubeConfig, type KubeConnection } from '../../cluster/kubernetes/kubeClient.ts';
import { BrainConfigError, mergeReads, parseBrainConfigYaml, type SourceRead } from '../config/schema.ts';
import { registerSourceKind } from './registry.ts';
import type { ConfigSource } from './types.ts';

const MIN_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 5000;
/** The server ends each watch after this long; the loop resumes it from the last version. */
const WATCH_TIMEOUT_S = 300;
/** How long a read waits for the first list. */
const FIRST_LIST_WAIT_MS = 30_000;

export class ConfigMapSource implements ConfigSource {
  readonly location: string;
  private readonly core: CoreV1Api;
  private readonly namespace: string;
  private readonly configMap: string;
  /** The ConfigMap's data as last seen: undefined before the first list, null when it does not exist. */
  private data: Record<string, string> | null | undefined;
  private listError: string | undefined;
  private resourceVersion = '';
  private loop?: Promise<void>;
  private abort?: AbortController;
  private stopped = false;
  /** Lists sent to the apiserver (once, then again only after 410 Gone or a lost watch); tests read it. */
  lists = 0;

  constructor(readonly name: string, location: string, private readonly kubeConfig: KubeConfig) {
    const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(location);
    if (!m) throw new BrainConfigError(`ROVER_BRAIN_SOURCES: source "${name}": configmap location must be <namespace>/<name> (got "${location}")`);
    [, this.namespace, this.configMap] = m as unknown as [string, string, string];
    this.location = `configmap ${location}`;
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  /** The configurations from the watched copy: no apiserver request per read once the first list landed. */
  async read(): Promise<SourceRead> {
    const where = `${this.namespace}/${this.configMap}`;
    this.loop ??= this.run();
    const deadline = Date.now() + FIRST_LIST_WAIT_MS;
    while (this.data === undefined && Date.now() < deadline && this.listError === undefined) await new Promise((r) => setTimeout(r, 50));
    if (this.data === undefined) throw new BrainConfigError(`configmap ${where}: cannot read it: ${this.listError ?? 'no answer from the apiserver'}`);
    if (this.data === null) throw new BrainConfigError(`configmap ${where}: not found`);
    return configMapRead(where, this.data);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    await this.loop;
  }

  /** List once, then watch from its resourceVersion; relist after 410 Gone, back off while the apiserver is away. */
  private async run(): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        if ((await this.watchOnce()) === 'gone') this.resourceVersion = '';
        backoff = MIN_BACKOFF_MS;
        continue;
      } catch (err) {
        if (this.stopped) break;
        // A read before the first list lands reports this; later ones serve the last copy seen.
        if (this.data === undefined) this.listError = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  private async relist(): Promise<void> {
    this.lists += 1;
    const list = await this.core.listNamespacedConfigMap({ namespace: this.namespace, fieldSelector: `metadata.name=${this.configMap}` });
    this.data = list.items[0] ? (list.items[0].data ?? {}) : null;
    this.listError = undefined;
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
  }

  private watchOnce(): Promise<'ended' | 'gone'> {
    return new Promise((resolve, reject) => {
      let gone = false;
      const onEvent = (type: string, obj: V1ConfigMap & { code?: number }) => {
        if (type === 'ERROR') {
          if (obj.code === 410) {
            gone = true;
            this.abort?.abort();
          }
          return;
        }
        if (type === 'ADDED' || type === 'MODIFIED') this.data = obj.data ?? {};
        else if (type === 'DELETED') this.data = null;
        this.resourceVersion = obj.metadata?.resourceVersion ?? this.resourceVersion;
      };
      const onDone = (err: unknown) => {
        const status = (err as { statusCode?: number } | null)?.statusCode;
        if (gone || status === 410) resolve('gone');
        else if (err && !this.stopped) reject(err instanceof Error ? err : new Error(String(err)));
        else resolve('ended');
      };
      const params = { fieldSelector: `metadata.name=${this.configMap}`, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: WATCH_TIMEOUT_S };
      new Watch(this.kubeConfig).watch(`/api/v1/namespaces/${this.namespace}/configmaps`, params, onEvent, onDone).then((abort) => {
        this.abort = abort;
        if (this.stopped) abort.abort();
      }, reject);
    });
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
