import { ApiException, type V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  kubeFailure, markOf, parseTimedLine, podHeader, podRefs, ResumeAfter, RUN_CLOCK_SLACK_MS, sinceTimeOf, splitTimedLog,
} from './kubeLogFormat.ts';

const RUN = Date.parse('2026-05-01T12:00:00.250Z');

/** A job pod as the backend creates it, with what a test names. */
function pod(name: string, o: { node?: string; incarnation?: string; run?: string; created?: number; started?: number; terminated?: boolean; phase?: string } = {}): V1Pod {
  const labels: Record<string, string> = { 'rover.dev/job': 'j' };
  if (o.node !== undefined) labels['rover.dev/node'] = o.node;
  if (o.incarnation !== undefined) labels['rover.dev/incarnation'] = o.incarnation;
  if (o.run !== undefined) labels['rover.dev/run'] = o.run;
  return {
    metadata: { name, labels, creationTimestamp: new Date(o.created ?? RUN + 1000) },
    status: {
      phase: o.phase ?? 'Running',
      ...(o.started !== undefined && { startTime: new Date(o.started) }),
      containerStatuses: [{ name: 'agent', image: 'x', imageID: '', ready: true, restartCount: 0, state: o.terminated ? { terminated: { exitCode: 1 } } : { running: {} } }],
    },
  };
}

describe('podRefs', () => {
  it('orders pods by node then incarnation and leaves out pods without node labels', () => {
    const refs = podRefs([
      pod('j-1-0', { node: '1', incarnation: '0' }),
      pod('j-0-1', { node: '0', incarnation: '1' }),
      pod('stray'),
      pod('j-0-0', { node: '0', incarnation: '0', terminated: true, phase: 'Failed' }),
    ], RUN);
    expect(refs.map((r) => [r.name, r.nodeId, r.incarnation, r.ended, r.pending])).toEqual([
      ['j-0-0', 0, 0, true, false],
      ['j-0-1', 0, 1, false, false],
      ['j-1-0', 1, 0, false, false],
    ]);
    expect(podRefs([pod('p', { node: '0', incarnation: '0', phase: 'Pending' })], RUN)[0]?.pending).toBe(true);
  });

  it('tells runs apart by the run label; an unlabelled pod by its creation time, with a little slack', () => {
    const refs = podRefs([
      pod('labelled-now', { node: '0', incarnation: '0', run: String(RUN) }),
      pod('labelled-before', { node: '1', incarnation: '0', run: String(RUN - 3_600_000), created: RUN + 5000 }),
      pod('unlabelled-new', { node: '2', incarnation: '0', created: Math.floor(RUN / 1000) * 1000 }),
      pod('unlabelled-old', { node: '3', incarnation: '0', created: RUN - RUN_CLOCK_SLACK_MS - 1000 }),
    ], RUN);
    expect(Object.fromEntries(refs.map((r) => [r.name, [r.current, r.run]]))).toEqual({
      'labelled-now': [true, RUN], 'labelled-before': [false, RUN - 3_600_000], 'unlabelled-new': [true, undefined], 'unlabelled-old': [false, undefined],
    });
  });

  it('dates an incarnation from its pod\'s start, else its creation', () => {
    const [started, created] = podRefs([
      pod('a', { node: '0', incarnation: '0', created: RUN, started: RUN + 7000 }),
      pod('b', { node: '1', incarnation: '0', created: RUN }),
    ], RUN);
    expect([started!.launchedAt, created!.launchedAt]).toEqual([RUN + 7000, RUN]);
  });
});

describe('podHeader', () => {
  it('is the local backend\'s header plus the pod; a pod of an earlier run says so', () => {
    const ref = { name: 'rover-j-2-1', nodeId: 2, incarnation: 1, launchedAt: RUN + 1000, current: true, run: RUN, ended: false, pending: false };
    expect(podHeader(ref, RUN)).toBe('=== rover run 2026-05-01T12:00:00.250Z · node 2 · incarnation 1 · launched 2026-05-01T12:00:01.250Z · pod rover-j-2-1 ===');
    expect(podHeader({ ...ref, current: false }, undefined)).toMatch(/^=== rover run earlier · node 2 · incarnation 1 · /);
  });
});

describe('kubelet timestamps', () => {
  it('splits a timestamped line into its exact time and its text, which may contain spaces', () => {
    expect(parseTimedLine('2026-05-01T12:00:00.123456789Z loss 0.5 at step 3')).toEqual({ at: [Date.parse('2026-05-01T12:00:00Z') / 1000, 123456789], text: 'loss 0.5 at step 3' });
    expect(parseTimedLine('2026-05-01T12:00:00.5Z x').at).toEqual([Date.parse('2026-05-01T12:00:00Z') / 1000, 500000000]);
    expect(parseTimedLine('2026-05-01T14:00:00+02:00 ').at).toEqual([Date.parse('2026-05-01T12:00:00Z') / 1000, 0]);
    expect(parseTimedLine('no time here')).toEqual({ at: undefined, text: 'no time here' });
  });

  it('reads a whole answer into lines, the last one with or without its newline', () => {
    expect(splitTimedLog('')).toEqual([]);
    expect(splitTimedLog('2026-05-01T12:00:00Z a\n2026-05-01T12:00:01Z b').map((l) => l.text)).toEqual(['a', 'b']);
    expect(splitTimedLog('2026-05-01T12:00:00Z a\n').map((l) => l.text)).toEqual(['a']);
  });

  it('marks where a log stood and resumes a follow stream just after it, lines of one write sharing a time', () => {
    const read = splitTimedLog(['2026-05-01T12:00:00.1Z a', '2026-05-01T12:00:00.2Z b', '2026-05-01T12:00:00.2Z c', ''].join('\n'));
    const mark = markOf(read)!;
    expect(mark).toEqual({ at: [Date.parse('2026-05-01T12:00:00Z') / 1000, 200000000], count: 2 });
    // The stream starts at the mark's whole second, so it repeats what was read.
    expect(sinceTimeOf(mark)).toBe('2026-05-01T12:00:00Z');
    const resume = new ResumeAfter(mark);
    const stream = splitTimedLog(['2026-05-01T12:00:00.1Z a', '2026-05-01T12:00:00.2Z b', '2026-05-01T12:00:00.2Z c', '2026-05-01T12:00:00.2Z d', '2026-05-01T12:00:01Z e'].join('\n'));
    expect(stream.filter((l) => resume.accept(l)).map((l) => l.text)).toEqual(['d', 'e']);
    expect(markOf([])).toBeUndefined();
    expect(new ResumeAfter(undefined).accept(read[0]!)).toBe(true);
  });
});

describe('kubeFailure', () => {
  const server = 'https://10.0.0.1:6443';
  const status = (code: number, message: string) => new ApiException(code, 'x', JSON.stringify({ kind: 'Status', code, message }), {});

  it('names an RBAC refusal and the permissions rover logs needs', () => {
    const message = kubeFailure(status(403, 'pods is forbidden: User "u" cannot list resource "pods"'), 'list pods in namespace ml', server);
    expect(message).toBe(
      'the Kubernetes API at https://10.0.0.1:6443 refused to list pods in namespace ml (403 Forbidden: pods is forbidden: User "u" cannot list resource "pods"); rover logs needs get and list on pods and get on pods/log in the job\'s namespace, as deploy/kubernetes/rbac-worker.yaml grants the rover-worker service account',
    );
  });

  it('says an unreachable server is unreachable, in one line', () => {
    const err = Object.assign(new Error('request to https://10.0.0.1:6443/api/v1/namespaces/ml/pods failed, reason: connect ECONNREFUSED 10.0.0.1:6443\n    at ClientRequest.<anonymous>'), { type: 'system' });
    expect(kubeFailure(err, 'list pods in namespace ml', server)).toBe(
      'cannot reach the Kubernetes API server at https://10.0.0.1:6443 to list pods in namespace ml: request to https://10.0.0.1:6443/api/v1/namespaces/ml/pods failed, reason: connect ECONNREFUSED 10.0.0.1:6443',
    );
  });

  it('gives other answers with their code and the apiserver\'s message', () => {
    expect(kubeFailure(status(401, 'Unauthorized'), 'list pods in namespace ml', server)).toBe(
      "the Kubernetes API at https://10.0.0.1:6443 did not accept the kubeconfig's credentials (401 Unauthorized) to list pods in namespace ml",
    );
    expect(kubeFailure(status(503, 'etcd is down'), 'list pods in namespace ml', server)).toBe('the Kubernetes API at https://10.0.0.1:6443 answered 503 to list pods in namespace ml: etcd is down');
  });
});
