// Checkpoint deletion where the files are (issue 17). The API's ledger decides which files go
// (steps past spec.checkpoint.keep, steps that never committed) and records them; it touches no
// file, for it may not see the checkpoint folder (Kubernetes mounts it on the nodes only). This
// agent, which sees the folder as its trainers do, claims a batch of the job's doomed files
// (claims are leases: one agent deletes a file, and a dead agent's claim lapses to the next),
// deletes what is still safe to delete, and acknowledges the batch. Safe to delete:
// - inside the job's checkpoint folder as this node sees it, symlinks resolved (paths came from
//   trainers; the API checked their words, this checks the real folders, at deletion time);
// - not a file any live report names (a kept step, or a newer one not committed yet), compared by
//   real path, so a name through a symlink or a reused name does not hide it;
// - not modified after the commit doomed it: a later save to the same name (a round resumed from
//   an earlier step and saved that step again) is a new checkpoint, spared.
// A step may be a folder of its own (torch.distributed.checkpoint writes <dir>/dcp-<step>/ with
// each rank's file and a .metadata no rank reports): a folder below the checkpoint folder that
// held removed files, holds no live file at any depth, and holds nothing but such leftovers
// (dotfiles, *.distcp) goes whole. Storage is shared by the job's nodes (every rank must load
// every committed step after a rescale), so any one agent of the job may delete any of its files.
import { lstat, readdir, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { DELETION_BATCH_MAX, type DoomedFile } from '../common/checkpointDeletionProtocol.ts';
import { checkCheckpointPath } from '../common/checkpointPaths.ts';
import { ApiHttpError, type DeletionClient, type NodeRef } from './apiClient.ts';

/** Batches one pass claims at most, so a pass ends even while commits keep dooming files. */
const MAX_BATCHES_PER_PASS = 64;

export interface DeletionOutcome {
  /** Files removed (real paths). */
  removed: string[];
  /** Doomed files left in place: outside the folder, named by a live report, or saved again since. */
  spared: string[];
}

/**
 * Deletes the doomed files that are safe to delete (see the file's comment). `dir`: the job's
 * checkpoint folder, absolute or relative to `workdir`, like a reported path. `live`: the paths of
 * every live report. Best effort: a file already gone, or a folder this host cannot see, is no error.
 */
export async function deleteDoomed(dir: string, workdir: string, doomed: DoomedFile[], live: string[]): Promise<DeletionOutcome> {
  const base = path.resolve(workdir);
  const absDir = path.resolve(base, dir);
  // A relative path is the trainer's, relative to its working directory; ".." stays in for the check to see.
  const real = async (p: string) => {
    const verdict = await checkCheckpointPath(absDir, path.isAbsolute(p) ? p : `${base}/${p}`);
    return verdict.ok ? verdict.realPath : undefined;
  };
  const liveReal = new Set((await Promise.all(live.map(real))).filter((p): p is string => p !== undefined));
  const outcome: DeletionOutcome = { removed: [], spared: [] };
  const folders = new Set<string>();
  for (const d of doomed) {
    const file = await real(d.path);
    if (file === undefined || liveReal.has(file)) {
      outcome.spared.push(d.path);
      continue;
    }
    const stat = await lstat(file).catch(() => undefined);
    if (stat === undefined) continue;
    if (Math.floor(stat.mtimeMs) > d.doomedAt) {
      outcome.spared.push(d.path);
      continue;
    }
    await rm(file, { force: true }).then(
      () => outcome.removed.push(file),
      () => outcome.spared.push(d.path),
    );
    folders.add(path.dirname(file));
  }
  const realDir = await realpath(absDir).catch(() => undefined);
  if (realDir === undefined) return outcome;
  for (const folder of folders) {
    if (!folder.startsWith(`${realDir}${path.sep}`)) continue;
    if ([...liveReal].some((k) => k.startsWith(`${folder}${path.sep}`))) continue;
    const entries = await readdir(folder, { withFileTypes: true }).catch(() => undefined);
    if (!entries || entries.some((e) => !e.isFile() || !(e.name.startsWith('.') || e.name.endsWith('.distcp')))) continue;
    await rm(folder, { recursive: true, force: true }).catch(() => undefined);
  }
  return outcome;
}

export interface CheckpointDeleterOptions {
  api: DeletionClient;
  ref: NodeRef;
  /** The job's checkpoint folder as the trainers see it (ROVER_CHECKPOINT_DIR; relative: to `workdir`). */
  checkpointDir: string;
  /** The trainers' working directory; default the agent's. */
  workdir?: string;
  /** How often the agent asks for doomed files when nothing told it of a commit, at least. */
  intervalMs: number;
  /**
   * Spacing of the asks of the whole job (ms): an agent of an N-node job asks every
   * max(intervalMs, N × this), so the job's asks stay near one per jobSpacingMs whatever N is
   * (ARCHITECTURE.md "Scale rules"). Commits trigger a pass at once and need no poll.
   */
  jobSpacingMs: number;
  log: Logger;
}

/** The agent's deleter: a pass every intervalMs, and one soon after trigger() (a commit seen). */
export class CheckpointDeleter {
  private stopped = false;
  /** The API answered 404 (one from before node-side deletion, or the job is gone): nothing to ask it. */
  private unsupported = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> = Promise.resolve();
  private passing: Promise<number> | undefined;
  /** Nodes of the latest round this agent was in; undefined until one closed. */
  private jobNodes: number | undefined;

  constructor(private readonly opts: CheckpointDeleterOptions) {}

  /** The job's node count changed (a round closed): the periodic asks spread over all of them. */
  setJobNodes(nodes: number): void {
    this.jobNodes = Math.max(1, nodes);
  }

  private get periodMs(): number {
    return Math.max(this.opts.intervalMs, (this.jobNodes ?? 1) * this.opts.jobSpacingMs);
  }

  start(): void {
    this.loop = (async () => {
      // Nothing is doomed before the first commit, and the job's size is known from the first
      // round on; then agents that started together spread their first asks over one period.
      while (this.jobNodes === undefined && !this.stopped) await this.sleep(this.opts.intervalMs);
      await this.sleep(Math.floor(Math.random() * this.periodMs));
      while (!this.stopped && !this.unsupported) {
        await this.pass().catch((err: unknown) => this.opts.log.warn({ err }, 'checkpoint deletion pass failed; trying again later'));
        // Jittered: agents that started together do not stay in step.
        await this.sleep(Math.floor(this.periodMs * (0.5 + Math.random())));
      }
    })();
  }

  /** Runs a pass soon (a checkpoint commit was seen). */
  trigger(): void {
    this.wake?.();
  }

  /** Stops the loop after one last pass (the job's last commits may have doomed files). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.pass().catch((err: unknown) => this.opts.log.warn({ err }, 'last checkpoint deletion pass failed'));
  }

  /** Claims, deletes and acknowledges batches until none is left; returns the files removed. One at a time. */
  pass(): Promise<number> {
    this.passing ??= this.drain().finally(() => (this.passing = undefined));
    return this.passing;
  }

  private async drain(): Promise<number> {
    const { api, ref } = this.opts;
    let removed = 0;
    for (let batch = 0; batch < MAX_BATCHES_PER_PASS && !this.unsupported; batch++) {
      const claim = await api.claimDeletions({ ...ref, limit: DELETION_BATCH_MAX }).catch((err: unknown) => {
        if (!(err instanceof ApiHttpError && err.status === 404)) throw err;
        this.unsupported = true;
        this.opts.log.debug({ err: err.message }, 'the API hands out no checkpoint deletions (404): this agent deletes none');
        return { deletions: [], token: '', claimedUntil: 0 };
      });
      if (claim.deletions.length === 0) break;
      const outcome = await deleteDoomed(this.opts.checkpointDir, this.opts.workdir ?? '.', claim.deletions, await this.livePaths());
      await api.deletionsDone({ ...ref, token: claim.token, ids: claim.deletions.map((d) => d.id) });
      removed += outcome.removed.length;
      this.opts.log.info({ removed: outcome.removed.length, spared: outcome.spared.length }, 'doomed checkpoint files deleted');
      if (claim.deletions.length < DELETION_BATCH_MAX) break;
    }
    return removed;
  }

  /** Every live report's path, page by page (each answer bounded, whatever the world size). */
  private async livePaths(): Promise<string[]> {
    const paths: string[] = [];
    let after: { step: number; rank: number } | undefined;
    do {
      const page = await this.opts.api.liveCheckpoints(this.opts.ref, after);
      for (const r of page.reports) paths.push(r.path);
      after = page.next;
    } while (after);
    return paths;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
