// Connection to a Kubernetes API server: a kubeconfig file (ROVER_KUBECONFIG) or the pod's
// in-cluster service account (ROVER_KUBERNETES_IN_CLUSTER=true).
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { notFoundError, permissionError } from '../../common/unhealableErrors.ts';

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

/** The Status object the API server sent with a failed call (a JSON string in client-node 1.x), if any. */
function statusBody(err: unknown): { message?: string; details?: { kind?: string } } | undefined {
  const body = (err as { body?: unknown } | null)?.body;
  if (typeof body === 'object' && body !== null) return body as { message?: string };
  if (typeof body !== 'string') return undefined;
  try {
    const parsed = JSON.parse(body) as unknown;
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The error of a call in `namespace`, classified: 401/403 are permission errors and a missing
 * namespace a not-found error (common/unhealableErrors.ts), each saying how to fix it, since no
 * retry heals them; anything else (network, 5xx, 409, other 404s) is returned unchanged.
 */
export function classifyKubeError(err: unknown, namespace: string): unknown {
  const code = statusOf(err);
  const said = statusBody(err)?.message;
  if (code === 403) {
    return permissionError(
      `the Kubernetes API server forbids Rover's worker in namespace ${namespace} (HTTP 403${said ? `: ${said}` : ''}): bind the worker's identity to Rover's Role in that namespace (deploy/kubernetes/rbac-worker.yaml)`,
    );
  }
  if (code === 401) {
    return permissionError(
      `the Kubernetes API server did not accept the worker's credentials (HTTP 401${said ? `: ${said}` : ''}): renew the token or certificate of ROVER_KUBECONFIG (or the pod's service account)`,
    );
  }
  if (code === 404 && (statusBody(err)?.details?.kind === 'namespaces' || /namespaces? "[^"]*" not found/.test(said ?? ''))) {
    return notFoundError(
      `Kubernetes namespace ${namespace} does not exist: create it (kubectl create namespace ${namespace}) and bind Rover's Role in it, or set spec.kubernetes.namespace to an existing namespace`,
    );
  }
  return err;
}
