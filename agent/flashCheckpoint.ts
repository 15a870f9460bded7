// Flash checkpoint: a trainer writes its state to /dev/shm/rover/<job>/<node>/<rank>-<step>
// (temp name, then rename) and tells this saver over HTTP on 127.0.0.1 (ROVER_AGENT_URL); the
// trainer goes on at once. The saver copies the bytes to storage in the background (temp
// name, fsync, rename, fsync the folder), checks the sha256, reports the checkpoint to the
// API, and keeps only the newest step per rank in shared memory, so a trainer restarted on
// this node can load the committed step from memory. flush() waits for pending saves (SIGTERM).
// A trainer may instead keep one buffer per rank that it overwrites at every save (rover_torch's
// Checkpointer: no page allocation on the blocking path): the saver persists its first `bytes`
// bytes and, while it reads them, keeps a `<buffer>.saving` mark so the trainer does not overwrite
// a buffer being persisted.
// The saver listens on 127.0.0.1, where any local process can reach it, and writes with the
// agent's rights; so a request must carry this node's token (ROVER_TOKEN, which only the agent and
// its trainers hold), its shared-memory file must really lie in this node's folder, and its
// destination must really lie in the job's checkpoint folder (symlinks resolved, when the request
// comes and again when the bytes are written).
import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { mkdir, open, readdir, realpath, rename, rm, rmdir, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ApiEndpoints } from '../common/apiUrls.ts';
import { checkCheckpointPath } from '../common/checkpointPaths.ts';
import { nodeShmDir } from '../common/flashShm.ts';
import { bearerOf, secretMatches } from '../common/tokens.ts';
import { trainerRef } from '../common/trainerProtocol.ts';

/** A checkpoint report the API has not answered in this long fails: flush() on SIGTERM must end. */
const REPORT_TIMEOUT_MS = 30_000;
/** One replica gets this long before the report moves on to the next. */
const REPORT_ATTEMPT_TIMEOUT_MS = 10_000;

const saveRequest = z.strictObject({
  ...trainerRef,
  step: z.number().int().min(1),
  shmPath: z.string().min(1),
  path: z.string().min(1),
  bytes: z.number().int().min(0),
  /** sha256 of the bytes; optional so the trainer need not hash on its blocking path (the saver hashes while copying). */
  checksum: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});
export type SaveRequest = z.infer<typeof saveRequest>;

export interface FlashSaverOptions {
  /** The API replicas checkpoints are reported to (the API client's, so both keep to the same one). */
  api: ApiEndpoints;
  job: string;
  node: number;
  /** This node's token (ROVER_TOKEN): reports carry it, and a save request must present it. */
  token: string;
  /** The job's checkpoint folder (ROVER_CHECKPOINT_DIR); nothing is written outside it. */
  checkpointDir: string;
  /** The trainers' working directory, against which relative paths (the folder's, a request's) resolve; default the agent's. */
  workdir?: string;
  log: Logger;
  /** Shared-memory folder; default /dev/shm/rover. */
  shmRoot?: string;
  /** Told when a report committed its step (the agent's checkpoint deleter then looks for doomed files). */
  onCommitted?: (step: number) => void;
}

/** A request's files, real paths: where the bytes are read from and where they go. */
interface Confined {
  shm: string;
  dest: string;
}

/** Marks a shared-memory buffer the saver is reading; the trainer skips a save while it exists. */
export const SAVING_SUFFIX = '.saving';

/** Copies the first `bytes` bytes of src to dest durably and returns the sha256 of what was copied. */
async function persist(src: string, dest: string, bytes: number): Promise<string> {
  await mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp.${process.pid}`;
  const hash = createHash('sha256');
  // A new file, never one planted there (a symlink at the temp name is removed, not followed).
  await rm(tmp, { force: true });
  const out = await open(tmp, 'wx');
  try {
    const chunks = bytes === 0 ? [] : createReadStream(src, { start: 0, end: bytes - 1, highWaterMark: 8 << 20 });
    for await (const chunk of chunks) {
      hash.update(chunk as Buffer);
      await out.write(chunk as Buffer);
    }
    await out.sync();
  } finally {
    await out.close();
  }
  await rename(tmp, dest);
  const dir = await open(path.dirname(dest), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return hash.digest('hex');
}

/** Removes `file` if it is still the file `written` describes (same inode, same modification time). */
async function removeIfUnchanged(file: string, written: { ino: number; mtimeMs: number }): Promise<void> {
  const now = await stat(file).catch(() => undefined);
  if (now?.ino === written.ino && now.mtimeMs === written.mtimeMs) await rm(file, { force: true });
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
}

export class FlashSaver {
  private server: Server | undefined;
  private queue: Promise<void> = Promise.resolve();
  private pending = 0;
  /** Failures of background saves, newest last (the trainer already moved on). */
  readonly failures: string[] = [];
  url = '';

  constructor(private readonly opts: FlashSaverOptions) {}

  /** This node's folder in shared memory. */
  get nodeDir(): string {
    return nodeShmDir(this.opts.job, this.opts.node, this.opts.shmRoot);
  }

  /** The job's checkpoint folder, absolute. */
  get checkpointDir(): string {
    return path.resolve(this.opts.workdir ?? '.', this.opts.checkpointDir);
  }

  /**
   * The real files of a request, or why it is refused (for the trainer's author: the field, the
   * folder, what to do). Nothing is written here but the checkpoint folder, if it is missing.
   */
  private async confine(req: SaveRequest): Promise<{ ok: true; files: Confined } | { ok: false; message: string }> {
    const shmDir = this.nodeDir;
    if (!path.resolve(req.shmPath).startsWith(shmDir + path.sep)) return { ok: false, message: `body.shmPath: must be under ${shmDir}` };
    const shm = await realpath(req.shmPath).catch(() => undefined);
    if (shm === undefined) return { ok: false, message: `body.shmPath: ${JSON.stringify(req.shmPath)} does not exist: write the checkpoint there first, then ask to save it` };
    const realShmDir = await realpath(shmDir).catch(() => shmDir);
    if (!shm.startsWith(realShmDir + path.sep)) {
      return { ok: false, message: `body.shmPath: ${JSON.stringify(req.shmPath)} leads outside ${shmDir} through a symlink (it is really ${JSON.stringify(shm)}); write the checkpoint into that folder itself` };
    }
    const dir = this.checkpointDir;
    // The folder exists from here on, so symlinks under it are resolved and checked.
    await mkdir(dir, { recursive: true }).catch(() => undefined);
    // A relative path is the trainer's, relative to its working directory; ".." stays in for the check to see.
    const file = path.isAbsolute(req.path) ? req.path : `${path.resolve(this.opts.workdir ?? '.')}/${req.path}`;
    const verdict = await checkCheckpointPath(dir, file);
    if (!verdict.ok) return { ok: false, message: `body.path: ${verdict.reason} (the trainer gets the folder as ROVER_CHECKPOINT_DIR)` };
    return { ok: true, files: { shm, dest: verdict.realPath ?? file } };
  }

  /** Whether the request presents this node's token (constant-time comparison). */
  private authorized(req: IncomingMessage): boolean {
    return secretMatches(bearerOf(req.headers.authorization), this.opts.token);
  }

  async start(): Promise<string> {
    await mkdir(this.nodeDir, { recursive: true });
    // Marks left by a saver that died (agent SIGKILL) guard nothing any more.
    for (const name of await readdir(this.nodeDir)) if (name.endsWith(SAVING_SUFFIX)) await rm(path.join(this.nodeDir, name), { force: true });
    this.server = createServer((req, res) => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/save') return reply(404, { error: 'not_found' });
      if (!this.authorized(req)) {
        req.resume();
        return reply(403, {
          error: 'forbidden',
          message: `POST /save needs the header "Authorization: Bearer <token>" with this node's token (ROVER_TOKEN, as the agent gave it to its training processes)`,
        });
      }
      readBody(req).then(
        async (body) => {
          const parsed = saveRequest.safeParse(body);
          if (!parsed.success) {
            return reply(400, { error: 'invalid_request', message: parsed.error.issues.map((i) => `body.${i.path.join('.')}: ${i.message}`).join('; ') });
          }
          const confined = await this.confine(parsed.data);
          if (!confined.ok) return reply(400, { error: 'invalid_request', message: confined.message });
          const mark = confined.files.shm + SAVING_SUFFIX;
          try {
            // O_NOFOLLOW: a symlink planted at the mark's name is not written through.
            await (await open(mark, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)).close();
          } catch (err) {
            return reply(507, { error: 'shm_unwritable', message: `cannot mark ${parsed.data.shmPath} as being saved: ${(err as Error).message}` });
          }
          this.enqueue(parsed.data, mark);
          return reply(202, { queued: true });
        },
        () => reply(400, { error: 'invalid_request', message: 'body is not JSON' }),
      ).catch((err: unknown) => reply(500, { error: 'internal', message: (err as Error).message }));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    return this.url;
  }

  private enqueue(req: SaveRequest, mark: string): void {
    this.pending += 1;
    // One save at a time: checkpoints of one node share the disk anyway, and order is kept.
    this.queue = this.queue.then(async () => {
      try {
        await this.save(req);
      } catch (err) {
        const message = `flash checkpoint of step ${req.step} rank ${req.rank} not saved: ${(err as Error).message}`;
        this.failures.push(message);
        this.opts.log.error({ step: req.step, rank: req.rank, err }, message);
      } finally {
        await rm(mark, { force: true });
        this.pending -= 1;
      }
    });
  }

  private async save(req: SaveRequest): Promise<void> {
    const started = Date.now();
    // Checked again: a symlink may have appeared since the request was accepted.
    const confined = await this.confine(req);
    if (!confined.ok) throw new Error(confined.message);
    const checksum = await persist(confined.files.shm, confined.files.dest, req.bytes);
    const written = await stat(confined.files.dest);
    if (req.checksum && checksum !== req.checksum) throw new Error(`sha256 of ${req.shmPath} is ${checksum}, the trainer said ${req.checksum}`);
    const { shmPath: _s, ...rest } = req;
    const report = { ...rest, checksum };
    const init = {
      method: 'POST',
      headers: { authorization: `Bearer ${this.opts.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(report),
    };
    const res = await this.opts.api.fetch(`/v1/jobs/${encodeURIComponent(this.opts.job)}/checkpoints`, init, {
      signal: AbortSignal.timeout(REPORT_TIMEOUT_MS),
      attemptTimeoutMs: REPORT_ATTEMPT_TIMEOUT_MS,
    });
    if (!res.ok) {
      const refusal = `the API refused the report: HTTP ${res.status} ${await res.text()}`;
      // Refused for good (a save of a round the job left while it waited in the queue): no report
      // names the file, so no commit will ever doom it. It goes now, unless saved again since.
      if (res.status >= 400 && res.status < 500) await removeIfUnchanged(confined.files.dest, written);
      throw new Error(refusal);
    }
    const answer = (await res.json().catch(() => undefined)) as { committed?: unknown } | undefined;
    if (answer?.committed === true) this.opts.onCommitted?.(req.step);
    await this.dropOlder(req.rank, req.step);
    this.opts.log.info({ step: req.step, rank: req.rank, bytes: req.bytes, ms: Date.now() - started }, 'flash checkpoint persisted');
  }

  /** Keeps only the newest step of `rank` in shared memory. */
  private async dropOlder(rank: number, step: number): Promise<void> {
    for (const name of await readdir(this.nodeDir).catch(() => [] as string[])) {
      const m = /^(\d+)-(\d+)$/.exec(name);
      if (m && Number(m[1]) === rank && Number(m[2]) < step) await rm(path.join(this.nodeDir, name), { force: true });
    }
  }

  /** Resolves once every save accepted so far is persisted (or failed). */
  async flush(): Promise<void> {
    while (this.pending > 0) await this.queue;
  }

  /** Flushes, stops listening, and (when the job is over for this node) frees the shared memory. */
  async close(opts: { removeShm: boolean }): Promise<void> {
    await this.flush();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    if (opts.removeShm) {
      await rm(this.nodeDir, { recursive: true, force: true });
      // The job's folder goes too once no other node of the job on this host uses it.
      await rmdir(path.dirname(this.nodeDir)).catch(() => undefined);
    }
  }
}
