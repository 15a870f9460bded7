// The job's entry in the Brain's history: features at start, outcome and usage peaks at the end.
// Keyed per run (store historyKey), so reruns under one name stay separate history.
import type { JobSpec } from '../common/spec/index.ts';
import { historyKey, METRIC_CPU_PERCENT, METRIC_RSS_BYTES, type Store } from '../store/index.ts';

export async function recordJobStart(store: Store, jobId: string, tokenDigest: string, spec: JobSpec): Promise<void> {
  const s = spec.spec;
  await store.jobHistory.recordStart({
    jobId: historyKey(jobId, tokenDigest),
    name: spec.metadata.name,
    user: spec.metadata.user,
    group: spec.metadata.group ?? '',
    cluster: s.backend,
    entrypoint: [s.entrypoint.command, ...s.entrypoint.args].join(' ').slice(0, 1000),
    datasetSize: s.dataset?.size ?? null,
    minNodes: s.nodes.min,
    maxNodes: s.nodes.max,
    initialNodes: s.nodes.initial,
    memoryBytes: s.resources.memory,
    cpu: s.resources.cpu,
    phase: 'LAUNCHING',
  });
}

export async function recordJobOutcome(store: Store, job: { id: string; tokenDigest: string }, phase: string, endedAt: number): Promise<void> {
  const rss = await store.jobHistory.peak(job.id, METRIC_RSS_BYTES);
  const cpu = await store.jobHistory.peak(job.id, METRIC_CPU_PERCENT);
  const nodes = await store.nodes.listByJob(job.id);
  const finalNodes = new Set(nodes.filter((n) => n.status !== 'stopped' || n.exitCode === 0).map((n) => n.nodeId)).size;
  await store.jobHistory.recordOutcome(historyKey(job.id, job.tokenDigest), {
    phase, finalNodes: finalNodes || null, peakRssBytes: rss, peakCpu: cpu === null ? null : cpu / 100, endedAt,
  });
}
