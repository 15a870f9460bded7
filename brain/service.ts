// The Brain over the store: gathers what an optimizer needs (the job's spec, similar past
// jobs, usage peaks, throughput), merges the job's configuration, and asks the router.
import { createHash } from 'node:crypto';
import type { JobSpec } from '../common/spec/index.ts';
import type { Store } from '../store/index.ts';
import { historyKey, METRIC_CPU_PERCENT, METRIC_RSS_BYTES, METRIC_THROUGHPUT, type Job } from '../store/index.ts';
import { matchConfigs, type MergedConfig, type SourcedConfig } from './config/match.ts';
import { brainConfigSchema, type JobCharacteristics } from './config/schema.ts';
import { isStage, optimizerSettings, routeOptimize, UnknownStageError, type OptimizeInputs } from './optimizers/router.ts';
import type { JobShape, ThroughputAt } from './optimizers/types.ts';
import type { OptimizeRequest, OptimizeResponse, ServedConfig } from './protocol.ts';

export class JobNotFoundError extends Error {}

/** Throughput samples looked at per running plan, newest first. */
const THROUGHPUT_WINDOW = 2000;

export function characteristicsOf(spec: JobSpec): JobCharacteristics {
  return {
    name: spec.metadata.name,
    user: spec.metadata.user,
    group: spec.metadata.group ?? '',
    cluster: spec.spec.backend,
    labels: spec.metadata.labels ?? {},
  };
}

export function shapeOf(spec: JobSpec): JobShape {
  const n = spec.spec.nodes;
  return { minNodes: n.min, maxNodes: n.max, unit: n.unit, initialNodes: n.initial, memoryBytes: spec.spec.resources.memory, cpu: spec.spec.resources.cpu };
}

/** JSON with object keys sorted, so equal values give equal text. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The version of a merged configuration: the first 16 hex of the sha256 of its canonical JSON. */
export function configVersion(configure: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(configure)).digest('hex').slice(0, 16);
}

export class BrainService {
  constructor(private readonly store: Store) {}

  /** Configurations of every source's latest snapshot. */
  async configs(): Promise<ServedConfig[]> {
    const rows = await this.store.brainConfigs.listLatest();
    return rows.map((r) => ({ source: r.source, version: r.version, name: r.name, priority: r.priority, include: r.include, exclude: r.exclude, configure: r.configure }));
  }

  async configFor(job: JobCharacteristics): Promise<MergedConfig> {
    const sourced: SourcedConfig[] = [];
    for (const c of await this.configs()) {
      // Snapshots hold validated configurations; a row that no longer parses is skipped.
      const parsed = brainConfigSchema.safeParse({ name: c.name, priority: c.priority, include: c.include, exclude: c.exclude, configure: c.configure });
      if (parsed.success) sourced.push({ ...parsed.data, source: c.source });
    }
    return matchConfigs(sourced, job);
  }

  /** A job's merged configuration with its version (a digest of the merged values: the same configuration, the same version). */
  async jobConfig(jobId: string): Promise<MergedConfig & { version: string }> {
    const merged = await this.configFor(characteristicsOf(await this.jobSpec(jobId)));
    return { ...merged, version: configVersion(merged.configure) };
  }

  async jobSpec(jobId: string): Promise<JobSpec> {
    return (await this.job(jobId)).spec;
  }

  private async job(jobId: string): Promise<Job> {
    const job = await this.store.jobs.get(jobId);
    if (!job) throw new JobNotFoundError(`no job named "${jobId}"`);
    return job;
  }

  async optimize(req: OptimizeRequest): Promise<OptimizeResponse> {
    if (!isStage(req.stage)) throw new UnknownStageError(req.stage);
    const row = await this.job(req.job);
    const spec = row.spec;
    // The run's history key: its failures count on the summary its activities keep.
    const key = historyKey(req.job, row.tokenDigest);
    const merged = await this.configFor(characteristicsOf(spec));
    const { settings, warnings } = optimizerSettings(merged.configure);
    const job = shapeOf(spec);
    const inputs: OptimizeInputs = { stage: req.stage, job };
    if (req.stage === 'initial') {
      const similar = await this.store.jobHistory.similar({ jobId: key, name: spec.metadata.name, user: spec.metadata.user, group: spec.metadata.group ?? '' }, settings.historyJobs);
      inputs.history = similar.map((s) => ({
        jobId: s.jobId, peakRssBytes: s.peakRssBytes, peakCpu: s.peakCpu, nodes: s.finalNodes ?? s.initialNodes, oomFailures: s.oomFailures,
      }));
    } else if (req.stage === 'oom') {
      const nodeId = req.nodeId ?? 0;
      const memoryBytes = req.memoryBytes ?? (await this.nodeMemory(req.job, nodeId, req.incarnation)) ?? job.memoryBytes;
      const peakRssBytes = await this.store.jobHistory.peak(req.job, METRIC_RSS_BYTES, nodeId);
      inputs.oom = { nodeId, memoryBytes, peakRssBytes, cpu: job.cpu };
      await this.store.jobHistory.recordFailure({
        jobId: key, nodeId, incarnation: req.incarnation ?? 0, exitCode: req.exitCode ?? null, reason: req.reason ?? 'out of memory', oom: true,
      });
    } else {
      inputs.currentNodes = req.currentNodes ?? job.initialNodes;
      inputs.throughput = await this.throughput(req.job);
    }
    const plan = routeOptimize(inputs, settings);
    return { job: req.job, plan, configs: merged.applied, warnings };
  }

  /** Peak cpu (cores) and rss of a job, from its samples; for the job's summary at its end. */
  async peaks(jobId: string): Promise<{ peakRssBytes: number | null; peakCpu: number | null }> {
    const rss = await this.store.jobHistory.peak(jobId, METRIC_RSS_BYTES);
    const cpu = await this.store.jobHistory.peak(jobId, METRIC_CPU_PERCENT);
    return { peakRssBytes: rss, peakCpu: cpu === null ? null : cpu / 100 };
  }

  private async nodeMemory(jobId: string, nodeId: number, incarnation: number | undefined): Promise<number | undefined> {
    if (incarnation === undefined) return undefined;
    const node = await this.store.nodes.get({ jobId, nodeId, incarnation });
    const memory = (node?.resources as { memory?: unknown } | null | undefined)?.memory;
    return typeof memory === 'number' ? memory : undefined;
  }

  /** Job throughput samples grouped by the node count they were measured at (label `nodes`). */
  private async throughput(jobId: string): Promise<ThroughputAt[]> {
    const rows = await this.store.metrics.list(jobId, METRIC_THROUGHPUT, { limit: THROUGHPUT_WINDOW });
    const bySize = new Map<number, number[]>();
    for (const r of rows) {
      const nodes = Number(r.labels.nodes);
      if (!Number.isInteger(nodes) || nodes <= 0) continue;
      bySize.set(nodes, [...(bySize.get(nodes) ?? []), r.value]);
    }
    return [...bySize.entries()].sort((a, b) => a[0] - b[0]).map(([nodes, samples]) => ({ nodes, samples }));
  }
}
