// Connection to a Kubernetes API server: a kubeconfig file (ROVER_KUBECONFIG) or the pod's
// in-cluster service account (ROVER_KUBERNETES_IN_CLUSTER=true).
import { ApiException, KubeConfig } from '@kubernetes/client-node';

export interface KubeConnection {
  kubeconfig?: string;
  inCluster: boolean;
}

/** A KubeConfig for the configured cluster, or undefined when Kubernetes is not configured. */
export function loadKubeConfig(k: KubeConnection): KubeConfig | undefined {
  if (!k.kubeconfig && !k.inCluster) return undefined;
  const kc = new KubeConfig();
  if (k.kubeconfig) kc.loadFromFile(k.kubeconfig);
  else kc.loadFromCluster();
  return kc;
}

/** HTTP status of a failed client call, or undefined for other errors (network, …). */
export function statusOf(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const code = (err as { code?: unknown; statusCode?: unknown } | null)?.code ?? (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** Runs a create; AlreadyExists (409) counts as success and yields undefined. */
export async function createOrExisting<T>(create: () => Promise<T>): Promise<T | undefined> {
  try {
    return await create();
  } catch (err) {
    if (statusOf(err) === 409) return undefined;
    throw err;
  }
}

/** Runs a delete; NotFound (404) counts as success. */
export async function deleteIfPresent(del: () => Promise<unknown>): Promise<void> {
  try {
    await del();
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
}
