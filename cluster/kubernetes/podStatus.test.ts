import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { podEnd } from './podStatus.ts';

const pod = (status: V1Pod['status'], deleting = false): V1Pod => ({
  metadata: { name: 'rover-j-0-0', ...(deleting && { deletionTimestamp: new Date() }) },
  status,
});
const terminated = (exitCode: number, reason?: string) => ({
  containerStatuses: [{ name: 'agent', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, reason } } }],
});

describe('podEnd', () => {
  it.each([
    ['pending', pod({ phase: 'Pending' }), undefined],
    ['running', pod({ phase: 'Running' }), undefined],
    ['succeeded', pod({ phase: 'Succeeded', ...terminated(0, 'Completed') }), undefined],
  ])('a %s pod has not ended', (_, p, expected) => {
    expect(podEnd(p)).toEqual(expected);
  });

  it('reads the exit code and reason of a failed container', () => {
    expect(podEnd(pod({ phase: 'Failed', ...terminated(137, 'Error') }))).toEqual({
      reason: 'pod rover-j-0-0 container exited with code 137 (Error)',
      exitCode: 137,
    });
  });

  it('marks OOMKilled', () => {
    expect(podEnd(pod({ phase: 'Failed', ...terminated(137, 'OOMKilled') }))).toMatchObject({ exitCode: 137, oomKilled: true });
  });

  it('reports eviction, preemption, node loss and deletion without an exit code', () => {
    expect(podEnd(pod({ phase: 'Failed', reason: 'Evicted', message: 'low memory' }))).toEqual({ reason: 'pod rover-j-0-0 evicted: low memory', platformCause: 'the cluster evicted the pod' });
    const preempted = { type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler' };
    expect(podEnd(pod({ phase: 'Failed', conditions: [preempted] }))?.reason).toContain('preempted (PreemptionByScheduler)');
    expect(podEnd(pod({ phase: 'Failed', conditions: [preempted] }))?.platformCause).toBe('the cluster preempted the pod');
    expect(podEnd(pod({ phase: 'Unknown', reason: 'NodeLost' }))).toEqual({ reason: 'pod rover-j-0-0 lost its node (NodeLost)', platformCause: 'the pod lost its Kubernetes node' });
    expect(podEnd(pod({ phase: 'Running' }, true))?.exitCode).toBeUndefined();
  });
});
