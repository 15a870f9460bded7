// Reads why a node's pod ended from its status: phase, the agent container's termination
// (exit code, OOMKilled, Error), eviction, preemption and node loss. Pure: unit-tested.
import type { V1Pod } from '@kubernetes/client-node';
import { AGENT_CONTAINER } from './manifests.ts';

export interface PodEnd {
  reason: string;
  /** The agent container's exit code, when the pod got that far. */
  exitCode?: number | null;
  oomKilled?: boolean;
  /** The cluster took the pod away (evicted, preempted, its node lost): not the job's failure. */
  platformCause?: string;
}

/** Why a pod of a live node has ended, or undefined while it is pending or running. */
export function podEnd(pod: V1Pod): PodEnd | undefined {
  const status = pod.status ?? {};
  const container =
    status.containerStatuses?.find((c) => c.name === AGENT_CONTAINER) ?? status.containerStatuses?.[0];
  const terminated = container?.state?.terminated ?? container?.lastState?.terminated;
  const preempted = status.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if (status.phase === 'Failed' || (terminated && terminated.exitCode !== 0)) {
    if (terminated) {
      const oomKilled = terminated.reason === 'OOMKilled';
      const why = [terminated.reason, terminated.message].filter(Boolean).join(': ');
      return {
        reason: `pod ${pod.metadata?.name} container exited with code ${terminated.exitCode}${why ? ` (${why})` : ''}`,
        exitCode: terminated.exitCode,
        ...(oomKilled && { oomKilled: true }),
      };
    }
    // Failed without a container exit: evicted, preempted, or rejected by the kubelet.
    const evicted = status.reason === 'Evicted';
    const why = evicted ? 'evicted' : preempted ? `preempted (${preempted.reason})` : (status.reason ?? 'failed');
    const reason = `pod ${pod.metadata?.name} ${why}${status.message ? `: ${status.message}` : ''}`;
    return { reason, ...((evicted || preempted) && { platformCause: `the cluster ${evicted ? 'evicted' : 'preempted'} the pod` }) };
  }
  if (status.phase === 'Unknown') {
    return { reason: `pod ${pod.metadata?.name} lost its node${status.reason ? ` (${status.reason})` : ''}`, platformCause: 'the pod lost its Kubernetes node' };
  }
  if (pod.metadata?.deletionTimestamp) {
    const why = preempted ? `preempted (${preempted.reason})` : 'is being deleted';
    return { reason: `pod ${pod.metadata.name} ${why}`, ...(preempted && { platformCause: 'the cluster preempted the pod' }) };
  }
  return undefined;
}

/**
 * Why a pod of a launched node has not started its agent yet, in Kubernetes' own words: the
 * scheduler's PodScheduled=False condition (Unschedulable: "0/3 nodes are available: …"), a
 * container waiting (ImagePullBackOff, ErrImagePull, CreateContainerConfigError, …), or where
 * it stands; undefined once it has ended (podEnd says why).
 */
export function podPending(pod: V1Pod): string | undefined {
  const status = pod.status ?? {};
  if (podEnd(pod)) return undefined;
  const words = (reason?: string, message?: string) => [reason, message].filter(Boolean).join(': ');
  const unscheduled = status.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unscheduled) return `pod not scheduled (PodScheduled False): ${words(unscheduled.reason, unscheduled.message) || 'no reason given'}`;
  const containers = [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])];
  const waiting = containers.find((c) => c.state?.waiting?.reason && c.state.waiting.reason !== 'ContainerCreating') ??
    containers.find((c) => c.state?.waiting);
  if (waiting?.state?.waiting) return `container ${waiting.name} waiting: ${words(waiting.state.waiting.reason, waiting.state.waiting.message) || 'no reason given'}`;
  const node = pod.spec?.nodeName;
  if (status.phase === 'Running') return `pod running on ${node ?? 'its node'}; the agent has not registered with the Rover API yet`;
  if (node) return `pod scheduled on ${node}, containers not started yet`;
  return `pod ${status.phase ?? 'Pending'}, not scheduled yet`;
}
