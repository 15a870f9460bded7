// A cache of the Rover pods of one namespace, kept by list + watch. The watch resumes from the
// last resourceVersion after a timeout or a dropped connection (an apiserver restart), relists
// after 410 Gone, and retries with backoff while the apiserver is unreachable — so a pod failure
// that happens while disconnected is seen on reconnect. Deleted pods leave a tombstone.
import { Watch, type CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../common/logger.ts';
import { LABEL_JOB } from './manifests.ts';

export type PodHandler = (type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: V1Pod) => void;

const MIN_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 5000;
/** The server ends each watch after this long; the loop resumes it from the last version. */
const WATCH_TIMEOUT_S = 300;

export interface PodWatchOptions {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  /** A namespace, or undefined for every namespace (needs cluster-wide list/watch). */
  namespace?: string;
  logger: Logger;
  onEvent?: PodHandler;
}

export class PodWatch {
  private readonly pods = new Map<string, V1Pod>();
  private readonly deleted = new Map<string, V1Pod>();
  private resourceVersion = '';
  private stopped = false;
  private abort?: AbortController;
  private wake?: () => void;
  private loop?: Promise<void>;
  /** Time (ms) the last successful list started; pods created before it are in the cache. */
  syncedAt: number | null = null;
  /** Times the watch was (re)established; tests read it. */
  connects = 0;

  constructor(private readonly o: PodWatchOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
  }

  /** Key: namespace/name. */
  get(namespace: string, name: string): V1Pod | undefined {
    return this.pods.get(`${namespace}/${name}`);
  }

  /** The last state of a pod this cache saw deleted. */
  tombstone(namespace: string, name: string): V1Pod | undefined {
    return this.deleted.get(`${namespace}/${name}`);
  }

  list(): V1Pod[] {
    return [...this.pods.values()];
  }

  /** Resolves once the first list has landed (or throws after `timeoutMs`). */
  async synced(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.syncedAt === null) {
      if (Date.now() > deadline) throw new Error(`pod cache of namespace ${this.o.namespace ?? '*'} did not sync within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async run(): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        const ended = await this.watchOnce();
        backoff = MIN_BACKOFF_MS;
        if (ended === 'gone') this.resourceVersion = '';
        continue;
      } catch (err) {
        if (this.stopped) break;
        this.o.logger.warn({ namespace: this.o.namespace, err: String(err), retryMs: backoff }, 'pod watch failed; retrying');
      }
      await this.sleep(backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  private async relist(): Promise<void> {
    const startedAt = Date.now();
    const labelSelector = LABEL_JOB;
    const list = this.o.namespace
      ? await this.o.core.listNamespacedPod({ namespace: this.o.namespace, labelSelector })
      : await this.o.core.listPodForAllNamespaces({ labelSelector });
    const seen = new Set<string>();
    for (const pod of list.items) {
      seen.add(key(pod));
      this.apply(this.pods.has(key(pod)) ? 'MODIFIED' : 'ADDED', pod);
    }
    for (const [k, pod] of this.pods) if (!seen.has(k)) this.apply('DELETED', pod);
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    this.syncedAt = startedAt;
  }

  /** One watch request; resolves when the server ends it ('gone' after 410) and throws on errors. */
  private watchOnce(): Promise<'ended' | 'gone'> {
    const path = this.o.namespace ? `/api/v1/namespaces/${this.o.namespace}/pods` : '/api/v1/pods';
    return new Promise((resolve, reject) => {
      let gone = false;
      const onEvent = (type: string, obj: V1Pod & { code?: number }) => {
        if (type === 'ERROR') {
          // 410 Gone: the version expired. The server may keep the stream open: end it, relist.
          if (obj.code === 410) {
            gone = true;
            this.abort?.abort();
          }
          return;
        }
        if (type === 'BOOKMARK') {
          this.resourceVersion = obj.metadata?.resourceVersion ?? this.resourceVersion;
          return;
        }
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
          this.apply(type, obj);
          this.resourceVersion = obj.metadata?.resourceVersion ?? this.resourceVersion;
        }
      };
      const onDone = (err: unknown) => {
        const status = (err as { statusCode?: number } | null)?.statusCode;
        if (gone || status === 410) resolve('gone');
        else if (err && !this.stopped) reject(err);
        else resolve('ended');
      };
      const params = {
        labelSelector: LABEL_JOB,
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: WATCH_TIMEOUT_S,
      };
      new Watch(this.o.kubeConfig).watch(path, params, onEvent, onDone).then(
        (abort) => {
          this.abort = abort;
          this.connects += 1;
          if (this.stopped) abort.abort();
        },
        reject,
      );
    });
  }

  private apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: V1Pod): void {
    const k = key(pod);
    if (type === 'DELETED') {
      this.pods.delete(k);
      this.deleted.set(k, pod);
      // Tombstones answer "why is this node gone"; bound them.
      if (this.deleted.size > 10_000) this.deleted.delete(this.deleted.keys().next().value!);
    } else {
      this.pods.set(k, pod);
    }
    this.o.onEvent?.(type, pod);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

const key = (pod: V1Pod): string => `${pod.metadata?.namespace}/${pod.metadata?.name}`;
