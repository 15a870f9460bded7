import type { V1Pod } from '@kubernetes/client-node';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.ts';
import type { Store } from '../store/index.ts';
import { K8sMonitor, parseQuantity, POD_METRICS } from './k8sMonitor.ts';

const pod = (phase: string, terminated?: { exitCode: number; reason: string }): V1Pod => ({
  metadata: { uid: 'u', name: 'rover-j-0-1', namespace: 'ns', labels: { 'rover.dev/job': 'j', 'rover.dev/node': '0', 'rover.dev/incarnation': '1' } },
  spec: { containers: [{ name: 'agent', resources: { requests: { cpu: '500m', memory: '1Gi' } } }] },
  status: { phase, ...(terminated && { containerStatuses: [{ name: 'agent', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated } }] }) },
});

describe('k8s monitor', () => {
  it('parses quantities', () => {
    expect(parseQuantity('500m')).toBe(0.5);
    expect(parseQuantity('1Gi')).toBe(2 ** 30);
    expect(parseQuantity('3')).toBe(3);
    expect(parseQuantity('x1')).toBeUndefined();
  });

  it('records requests once, each phase change once, and OOM kills', () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u' }], contexts: [{ name: 'c', cluster: 'c', user: 'u' }], currentContext: 'c' });
    const monitor = new K8sMonitor({ kubeConfig: kc, store: {} as Store, logger: createLogger('t', 'silent') });
    const names = (type: 'ADDED' | 'MODIFIED' | 'DELETED', p: V1Pod) => monitor.observe(type, p).map((s) => s.name);
    expect(names('ADDED', pod('Pending'))).toEqual([POD_METRICS.cpuRequest, POD_METRICS.memoryRequest, POD_METRICS.gpuRequest, POD_METRICS.phase]);
    expect(names('MODIFIED', pod('Pending'))).toEqual([]);
    expect(names('MODIFIED', pod('Running'))).toEqual([POD_METRICS.phase]);
    const failed = monitor.observe('MODIFIED', pod('Failed', { exitCode: 137, reason: 'OOMKilled' }));
    expect(failed.map((s) => s.name)).toEqual([POD_METRICS.phase, POD_METRICS.oomKilled]);
    expect(failed[0]).toMatchObject({ jobId: 'j', nodeId: 0, incarnation: 1, value: 3, labels: { phase: 'Failed', exitCode: '137', reason: 'OOMKilled' } });
    expect(names('MODIFIED', pod('Failed', { exitCode: 137, reason: 'OOMKilled' }))).toEqual([]);
    expect(names('DELETED', pod('Failed'))).toEqual([POD_METRICS.deleted]);
  });
});
