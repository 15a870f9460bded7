// Prometheus metrics of the API. Fleet state (jobs by phase, nodes by status, relaunches, step,
// heartbeat lag, shards) is read from the store at scrape time, so every API replica reports the
// same truth and a restarted API loses nothing; what only passes through this process (requests,
// process failures, round closings, step rates from heartbeats) is counted in memory.
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { isTerminalPhase, type JobPhase } from '../common/phases.ts';
import type { Store } from '../store/index.ts';

/** Events of the API service that only this process sees. */
export interface AgentServiceHooks {
  processFailed?(jobId: string, failureClass: string): void;
  roundClosed?(jobId: string, seconds: number): void;
  /** The round policy ran on a round here (closed, failed or still open): its long polls may answer. */
  roundDecided?(jobId: string, round: number): void;
  /** A process failure reported here opened the job's next round: its held heartbeats may answer. */
  roundOpened?(jobId: string): void;
  heartbeat?(jobId: string, step: number | null, at: number): void;
}

/** Window over which step rates are computed. */
const RATE_WINDOW_MS = 60_000;

export function createApiMetrics(store: Store, now: () => number): { registry: Registry; hooks: AgentServiceHooks; instrument(app: FastifyInstance): void } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'rover_api_' });
  const registers = [registry];

  new Gauge({
    name: 'rover_jobs',
    help: 'Jobs in the store by phase.',
    labelNames: ['phase'],
    registers,
    async collect() {
      const rows = await store.db.selectFrom('jobs').select(['phase', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('phase').execute();
      this.reset();
      for (const r of rows) this.set({ phase: r.phase }, Number(r.n));
    },
  });
  new Gauge({
    name: 'rover_nodes',
    help: 'Node incarnations of unfinished jobs by status.',
    labelNames: ['status'],
    registers,
    async collect() {
      const rows = await store.db
        .selectFrom('nodes')
        .innerJoin('jobs', 'jobs.id', 'nodes.jobId')
        .select(['nodes.status', 'jobs.phase', (eb) => eb.fn.countAll<number>().as('n')])
        .groupBy(['nodes.status', 'jobs.phase'])
        .execute();
      this.reset();
      const counts = new Map<string, number>();
      for (const r of rows) if (!isTerminalPhase(r.phase as JobPhase)) counts.set(r.status, (counts.get(r.status) ?? 0) + Number(r.n));
      for (const [status, n] of counts) this.set({ status }, n);
    },
  });
  new Counter({
    name: 'rover_node_relaunches_total',
    help: 'Nodes relaunched as a new incarnation, by what happened to the one before (failed: it exited with a code; lost: it vanished).',
    labelNames: ['reason'],
    registers,
    async collect() {
      const rows = await store.db.selectFrom('nodes').select(['jobId', 'nodeId', 'incarnation', 'exitCode']).execute();
      const byKey = new Map(rows.map((r) => [`${r.jobId}/${r.nodeId}/${r.incarnation}`, r]));
      const counts = { failed: 0, lost: 0 };
      for (const r of rows) {
        if (r.incarnation === 0) continue;
        const before = byKey.get(`${r.jobId}/${r.nodeId}/${r.incarnation - 1}`);
        counts[before?.exitCode === null || before === undefined ? 'lost' : 'failed'] += 1;
      }
      this.reset();
      for (const [reason, n] of Object.entries(counts)) if (n > 0) this.inc({ reason }, n);
    },
  });
  const running = async () =>
    store.db
      .selectFrom('nodes')
      .innerJoin('jobs', 'jobs.id', 'nodes.jobId')
      .select(['nodes.jobId', 'nodes.step', 'nodes.lastHeartbeatAt', 'jobs.phase'])
      .where('nodes.status', '=', 'running')
      .execute();
  new Gauge({
    name: 'rover_heartbeat_lag_seconds',
    help: 'Longest time since the last heartbeat among the running nodes of a job.',
    labelNames: ['job'],
    registers,
    async collect() {
      const t = now();
      const lag = new Map<string, number>();
      for (const r of await running()) {
        if (r.lastHeartbeatAt === null) continue;
        lag.set(r.jobId, Math.max(lag.get(r.jobId) ?? 0, (t - r.lastHeartbeatAt) / 1000));
      }
      this.reset();
      for (const [job, seconds] of lag) this.set({ job }, seconds);
    },
  });
  new Gauge({
    name: 'rover_job_step',
    help: 'Highest training step the running nodes of a job reported.',
    labelNames: ['job'],
    registers,
    async collect() {
      const steps = new Map<string, number>();
      for (const r of await running()) if (r.step !== null) steps.set(r.jobId, Math.max(steps.get(r.jobId) ?? 0, r.step));
      this.reset();
      for (const [job, step] of steps) this.set({ job }, step);
    },
  });
  // Per-job series cover unfinished jobs only: a job's series go when it ends.
  const doneShards = async () =>
    store.db
      .selectFrom('shards')
      .innerJoin('jobs', 'jobs.id', 'shards.jobId')
      .select(['shards.jobId', 'shards.startIndex', 'shards.endIndex', 'shards.doneAt'])
      .where('shards.doneAt', 'is not', null)
      .where('jobs.endedAt', 'is', null)
      .execute();
  new Counter({
    name: 'rover_shards_done_total',
    help: 'Data shards trainers finished, per job.',
    labelNames: ['job'],
    registers,
    async collect() {
      const counts = new Map<string, number>();
      for (const r of await doneShards()) counts.set(r.jobId, (counts.get(r.jobId) ?? 0) + 1);
      this.reset();
      for (const [job, n] of counts) this.inc({ job }, n);
    },
  });
  new Gauge({
    name: 'rover_job_samples_per_second',
    help: 'Samples of finished shards per second over the last minute, per job.',
    labelNames: ['job'],
    registers,
    async collect() {
      const since = now() - RATE_WINDOW_MS;
      const samples = new Map<string, number>();
      for (const r of await doneShards()) {
        const count = (r.doneAt ?? 0) >= since ? r.endIndex - r.startIndex : 0;
        samples.set(r.jobId, (samples.get(r.jobId) ?? 0) + count);
      }
      this.reset();
      for (const [job, n] of samples) this.set({ job }, n / (RATE_WINDOW_MS / 1000));
    },
  });

  const restarts = new Counter({
    name: 'rover_process_restarts_total',
    help: 'Training process failures the agents restarted (or escalated), by failure class.',
    labelNames: ['reason'],
    registers,
  });
  const rendezvous = new Histogram({
    name: 'rover_rendezvous_duration_seconds',
    help: 'Time from a rendezvous round opening to its closing.',
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
    registers,
  });
  const stepRate = new Gauge({
    name: 'rover_job_steps_per_second',
    help: 'Training steps per second over the last minute, per job.',
    labelNames: ['job'],
    registers,
    async collect() {
      // Rates are fed by heartbeats; a job that ended sends none, so its series is dropped here.
      if (steps.size === 0) return;
      const open = await store.db.selectFrom('jobs').select('id').where('id', 'in', [...steps.keys()]).where('endedAt', 'is', null).execute();
      const live = new Set(open.map((j) => j.id));
      for (const job of [...steps.keys()]) {
        if (live.has(job)) continue;
        steps.delete(job);
        this.remove({ job });
      }
    },
  });
  const requests = new Histogram({
    name: 'rover_api_request_duration_seconds',
    help: 'API request latency by route and status code.',
    labelNames: ['method', 'route', 'code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });

  /** Per job: (time, highest step) samples within the rate window. */
  const steps = new Map<string, { at: number; step: number }[]>();
  const hooks: AgentServiceHooks = {
    processFailed: (_jobId, failureClass) => restarts.inc({ reason: failureClass }),
    roundClosed: (_jobId, seconds) => rendezvous.observe(seconds),
    heartbeat: (jobId, step, at) => {
      if (step === null) return;
      const window = (steps.get(jobId) ?? []).filter((s) => s.at >= at - RATE_WINDOW_MS);
      const last = window[window.length - 1];
      if (last && step < last.step) window.length = 0; // restarted from a checkpoint: start over
      if (!last || step !== last.step) window.push({ at, step });
      steps.set(jobId, window);
      const first = window[0]!;
      const latest = window[window.length - 1]!;
      if (latest.at > first.at) stepRate.set({ job: jobId }, (latest.step - first.step) / ((latest.at - first.at) / 1000));
    },
  };

  const instrument = (app: FastifyInstance) => {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      requests.observe({ method: request.method, route, code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });
  };
  return { registry, hooks, instrument };
}
