import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { podEnd, podPending } from './podStatus.ts';

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

describe('podPending', () => {
  const waiting = (reason: string, message?: string) => ({
    containerStatuses: [{ name: 'agent', image: 'rover:x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } } }],
  });
  const scheduled = (p: V1Pod): V1Pod => ({ ...p, spec: { containers: [], nodeName: 'gpu-7' } });

  it.each([
    [
      'unschedulable: the scheduler\'s reason and message',
      pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.' }] }),
      'pod not scheduled (PodScheduled False): Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.',
    ],
    [
      'an image that cannot be pulled',
      scheduled(pod({ phase: 'Pending', ...waiting('ImagePullBackOff', 'Back-off pulling image "rover:x"') })),
      'container agent waiting: ImagePullBackOff: Back-off pulling image "rover:x"',
    ],
    ['ErrImagePull', scheduled(pod({ phase: 'Pending', ...waiting('ErrImagePull', 'manifest unknown') })), 'container agent waiting: ErrImagePull: manifest unknown'],
    ['a container being created', scheduled(pod({ phase: 'Pending', ...waiting('ContainerCreating') })), 'container agent waiting: ContainerCreating'],
    ['scheduled, nothing started', scheduled(pod({ phase: 'Pending' })), 'pod scheduled on gpu-7, containers not started yet'],
    ['not scheduled yet, no condition', pod({ phase: 'Pending' }), 'pod Pending, not scheduled yet'],
    ['running, agent silent', scheduled(pod({ phase: 'Running' })), 'pod running on gpu-7; the agent has not registered with the Rover API yet'],
    ['ended', pod({ phase: 'Failed', ...terminated(1, 'Error') }), undefined],
  ])('%s', (_, p, expected) => {
    expect(podPending(p)).toBe(expected);
  });
});
