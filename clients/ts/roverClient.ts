// Rover trainer client for TypeScript/Node training processes: the same contract as
// clients/python/rover_client.py. Reads the torchrun and ROVER_* environment, leases shards,
// reports them done, reports steps, and saves/loads checkpoints (through the agent's flash
// saver when ROVER_AGENT_URL is set, else straight to storage with fsync).
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ApiEndpoints, parseApiUrls, retryAfterDelayMs, retryAfterMs } from '../../common/apiUrls.ts';
import {
  checkpointReportResponse,
  jobConfigResponse,
  latestCheckpoint,
  leaseResponse,
  type JobConfigResponse,
  type LatestCheckpoint,
  type LeasedShard,
  type RestoreReport,
} from '../../common/trainerProtocol.ts';

type RestoreSource = RestoreReport['source'];

export const SHM_ROOT = '/dev/shm/rover';

export class RoverError extends Error {
  override name = 'RoverError';
}
/** The job moved to a newer rendezvous round: the agent is about to restart this process. */
export class StaleRound extends RoverError {
  override name = 'StaleRound';
}

const int = (env: NodeJS.ProcessEnv, name: string, fallback: number): number => {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new RoverError(`${name}=${JSON.stringify(raw)} is not an integer`);
  return n;
};

export function readTrainerEnv(env: NodeJS.ProcessEnv = process.env) {
  const job = env.ROVER_JOB ?? '';
  return {
    rank: int(env, 'RANK', 0),
    worldSize: int(env, 'WORLD_SIZE', 1),
    localRank: int(env, 'LOCAL_RANK', 0),
    localWorldSize: int(env, 'LOCAL_WORLD_SIZE', 1),
    groupRank: int(env, 'GROUP_RANK', 0),
    restartCount: int(env, 'TORCHELASTIC_RESTART_COUNT', 0),
    masterAddr: env.MASTER_ADDR ?? '127.0.0.1',
    masterPort: int(env, 'MASTER_PORT', 29500),
    /** One URL, or several API replicas separated by commas. */
    apiUrls: env.ROVER_API_URL ? parseApiUrls(env.ROVER_API_URL) : [],
    job,
    token: env.ROVER_TOKEN ?? '',
    node: int(env, 'ROVER_NODE', 0),
    incarnation: int(env, 'ROVER_INCARNATION', 0),
    round: int(env, 'ROVER_ROUND', 0),
    /** -1 when the agent did not say; ask latestCheckpoint(). */
    resumeStep: int(env, 'ROVER_RESUME_STEP', -1),
    agentUrl: (env.ROVER_AGENT_URL ?? '').replace(/\/+$/, ''),
    checkpointDir: env.ROVER_CHECKPOINT_DIR || path.join('.rover', 'checkpoints', job || 'local'),
    /** The job's Brain configuration version when the agent started this process ('' if unknown). */
    configVersion: env.ROVER_CONFIG_VERSION ?? '',
  };
}
export type TrainerEnv = ReturnType<typeof readTrainerEnv>;

export const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** temp name, fsync, rename, fsync the folder. */
export async function writeDurably(file: string, data: Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp.${process.pid}`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** How long a request keeps retrying while the API answers 429 (it sheds load; see api/overload.ts). */
const BUSY_RETRY_MS = 120_000;

export class RoverClient {
  private latest: LatestCheckpoint | undefined;

  /** The API replicas (undefined without ROVER_API_URL: not started by a Rover agent). */
  private readonly api: ApiEndpoints | undefined;

  constructor(readonly env: TrainerEnv = readTrainerEnv()) {
    this.api = env.apiUrls.length > 0 ? new ApiEndpoints(env.apiUrls, env.node) : undefined;
  }

  private ref() {
    const { node, incarnation, rank, round } = this.env;
    return { node, incarnation, rank, round };
  }

  /**
   * One request: `target` is a path under the job on the API (the replica this client keeps to,
   * the next when it cannot be reached), or the agent's flash saver `{ agent: path }`. Both take
   * this node's token.
   */
  private async call(method: 'GET' | 'POST', target: string | { agent: string }, body?: unknown): Promise<unknown> {
    const toAgent = typeof target !== 'string';
    const init = {
      method,
      headers: {
        authorization: `Bearer ${this.env.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    };
    const url = toAgent ? `${this.env.agentUrl}${target.agent}` : `/v1/jobs/${encodeURIComponent(this.env.job)}/${target}`;
    if (!toAgent && !this.api) throw new RoverError(`${method} ${url}: ROVER_API_URL is not set (is this process started by a Rover agent?)`);
    const send = () => (toAgent ? fetch(url, init) : this.api!.fetch(url, init));
    let res = await send();
    // The API sheds load with 429: wait what it asks (Retry-After) plus jitter, for up to BUSY_RETRY_MS.
    for (const until = Date.now() + BUSY_RETRY_MS; res.status === 429 && Date.now() < until; res = await send()) {
      await res.body?.cancel();
      await new Promise((r) => setTimeout(r, retryAfterDelayMs(retryAfterMs(res.headers.get('retry-after')) ?? 1000)));
    }
    const text = await res.text();
    const json = (text ? JSON.parse(text) : null) as { error?: string; message?: string } | null;
    if (res.status === 409 && json?.error === 'stale_round') throw new StaleRound(json.message ?? 'stale round');
    if (!res.ok) throw new RoverError(`${method} ${url}: HTTP ${res.status}: ${json?.message ?? text}`);
    return json;
  }


  async lease(count = 1): Promise<{ shards: LeasedShard[]; finished: boolean }> {
    const res = leaseResponse.parse(await this.call('POST', 'shards/lease', { ...this.ref(), count }));
    return { shards: res.shards, finished: res.finished };
  }

  async done(step: number, shards: Pick<LeasedShard, 'epoch' | 'shardIndex'>[]): Promise<number> {
    if (shards.length === 0) return 0;
    const keys = shards.map((s) => ({ epoch: s.epoch, shardIndex: s.shardIndex }));
    const res = (await this.call('POST', 'shards/done', { ...this.ref(), step, shards: keys })) as { counted: number };
    return res.counted;
  }

  async giveBack(shards: Pick<LeasedShard, 'epoch' | 'shardIndex'>[]): Promise<number> {
    if (shards.length === 0) return 0;
    const keys = shards.map((s) => ({ epoch: s.epoch, shardIndex: s.shardIndex }));
    return ((await this.call('POST', 'shards/giveback', { ...this.ref(), shards: keys })) as { returned: number }).returned;
  }

  /** Leased shards until the dataset is finished; report each one done yourself. */
  async *shards(batch = 1, pollMs = 500): AsyncGenerator<LeasedShard> {
    for (;;) {
      const { shards, finished } = await this.lease(batch);
      if (shards.length > 0) yield* shards;
      else if (finished) return;
      else await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  async reportStep(step: number, metrics: Record<string, number> = {}): Promise<void> {
    await this.call('POST', 'trainers/step', { ...this.ref(), step, metrics });
  }

  /**
   * The job's merged Brain configuration with its version. With `after` (a version) and `waitMs`
   * (≤ 60 000), a long poll: answers once the version differs, or when the wait is over.
   */
  async config(opts: { after?: string; waitMs?: number } = {}): Promise<JobConfigResponse> {
    const q = new URLSearchParams({ waitMs: String(opts.waitMs ?? 0), ...(opts.after && { after: opts.after }) });
    return jobConfigResponse.parse(await this.call('GET', `config?${q}`));
  }

  /**
   * Each new configuration while the job runs. Starts from the version this process was started
   * with (ROVER_CONFIG_VERSION), so the first one yielded is new to it; without that version,
   * the current one first. Each request long-polls up to `waitMs`.
   */
  async *watchConfig(waitMs = 30_000): AsyncGenerator<JobConfigResponse> {
    let version = this.env.configVersion || undefined;
    for (;;) {
      const res = await this.config({ ...(version && { after: version }), waitMs });
      if (res.version !== version) {
        version = res.version;
        yield res;
      }
    }
  }

  async latestCheckpoint(): Promise<LatestCheckpoint> {
    if (!this.latest) {
      const { round, node, incarnation, rank } = this.env;
      const q = `round=${round}&node=${node}&incarnation=${incarnation}&rank=${rank}`;
      this.latest = latestCheckpoint.parse(await this.call('GET', `checkpoints/latest?${q}`));
    }
    return this.latest;
  }

  checkpointPath(step: number, rank = this.env.rank): string {
    return path.join(path.resolve(this.env.checkpointDir), `ckpt-${step}-rank${rank}.bin`);
  }

  shmPath(step: number, rank = this.env.rank): string {
    return path.join(SHM_ROOT, this.env.job || 'local', String(this.env.node), `${rank}-${step}`);
  }

  /**
   * Saves this rank's state of `step`. With a flash agent it returns once the bytes are in shared
   * memory (the agent persists and reports them); else after write + fsync + report.
   */
  async saveCheckpoint(step: number, data: Uint8Array): Promise<string> {
    const file = this.checkpointPath(step);
    if (this.env.agentUrl) {
      const shm = this.shmPath(step);
      await mkdir(path.dirname(shm), { recursive: true });
      const fs = await statfs(path.dirname(shm));
      const free = fs.bavail * fs.bsize;
      if (data.byteLength > free) {
        throw new RoverError(`/dev/shm has ${free} bytes free, the checkpoint needs ${data.byteLength}; enlarge /dev/shm or set spec.checkpoint.flash: false`);
      }
      await writeFile(`${shm}.tmp`, data);
      await rename(`${shm}.tmp`, shm);
      // No hashing here: the saver hashes while it copies, off the training path.
      await this.call('POST', { agent: '/save' }, { ...this.ref(), step, shmPath: shm, path: file, bytes: data.byteLength });
      return file;
    }
    const checksum = sha256Hex(data);
    await writeDurably(file, data);
    checkpointReportResponse.parse(
      await this.call('POST', 'checkpoints', { ...this.ref(), step, path: file, bytes: data.byteLength, checksum }),
    );
    return file;
  }

  /** The committed checkpoint of `rank` (default this rank, else rank 0): shared memory first, then storage. */
  /** Tells the job this rank resumes from committed `step`, read from `source` in `seconds`: a checkpoint_restored event. */
  async reportRestored(step: number, source: RestoreSource, seconds?: number): Promise<void> {
    await this.call('POST', 'checkpoints/restored', { ...this.ref(), step, source, ...(seconds !== undefined && { seconds }) });
  }

  async loadCheckpoint(rank?: number): Promise<{ step: number; data: Buffer | null }> {
    const started = performance.now();
    const latest = await this.latestCheckpoint();
    if (latest.step === 0) return { step: 0, data: null };
    const want = rank ?? this.env.rank;
    const entry = latest.ranks.find((r) => r.rank === want) ?? latest.ranks.find((r) => r.rank === 0) ?? latest.ranks[0];
    if (!entry) throw new RoverError(`committed step ${latest.step} lists no rank files`);
    for (const [source, file] of [['shm', this.shmPath(latest.step, entry.rank)], ['storage', entry.path]] as const) {
      const data = await readFile(file).catch(() => null);
      if (data && sha256Hex(data) === entry.checksum) {
        await this.reportRestored(latest.step, source, (performance.now() - started) / 1000);
        return { step: latest.step, data };
      }
    }
    throw new RoverError(`checkpoint of step ${latest.step} rank ${entry.rank} is missing or corrupt (shared memory and ${entry.path})`);
  }
}
