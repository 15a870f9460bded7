// What the Kubernetes API server's refusals mean for a job: 401/403 and a missing namespace end it
// with the fix; everything else is retried.
import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { UnhealableError } from '../../common/unhealableErrors.ts';
import { classifyKubeError } from './kubeClient.ts';

/** A refusal as client-node 1.x throws it: the Status object as the body's JSON text. */
const refusal = (code: number, status: object | undefined) => new ApiException(code, 'Unknown API Status Code!', status && JSON.stringify(status), {});

describe('classifyKubeError', () => {
  it('makes a 403 a permission error that names the namespace, quotes the server and points at the Role', () => {
    const err = classifyKubeError(
      refusal(403, { kind: 'Status', reason: 'Forbidden', message: 'pods is forbidden: User "system:serviceaccount:rover:rover-worker" cannot create resource "pods" in API group "" in the namespace "team-a"' }),
      'team-a',
    );
    expect(err).toBeInstanceOf(UnhealableError);
    expect(err).toMatchObject({ kind: 'permission', name: 'RoverPermissionError' });
    expect((err as Error).message).toMatch(/namespace team-a \(HTTP 403: pods is forbidden: User .* cannot create resource "pods"/);
    expect((err as Error).message).toContain('deploy/kubernetes/rbac-worker.yaml');
  });

  it('makes a 401 a permission error about the worker\'s credentials', () => {
    const err = classifyKubeError(new ApiException(401, 'Unauthorized', undefined, {}), 'default');
    expect(err).toMatchObject({ kind: 'permission' });
    expect((err as Error).message).toMatch(/HTTP 401.*ROVER_KUBECONFIG/);
  });

  it('makes a missing namespace a not-found error saying how to create it', () => {
    const err = classifyKubeError(
      refusal(404, { kind: 'Status', reason: 'NotFound', message: 'namespaces "team-b" not found', details: { name: 'team-b', kind: 'namespaces' } }),
      'team-b',
    );
    expect(err).toMatchObject({ kind: 'notFound', name: 'RoverNotFoundError' });
    expect((err as Error).message).toContain('kubectl create namespace team-b');
  });

  it('leaves other errors retryable: a missing pod, a conflict, a server error, the network', () => {
    const missingPod = refusal(404, { reason: 'NotFound', message: 'pods "rover-j-0-0" not found', details: { name: 'rover-j-0-0', kind: 'pods' } });
    const network = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
    for (const err of [missingPod, refusal(409, { reason: 'AlreadyExists' }), refusal(500, undefined), refusal(503, { message: 'etcdserver: leader changed' }), network]) {
      expect(classifyKubeError(err, 'default')).toBe(err);
    }
  });
});
