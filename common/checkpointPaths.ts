// Checkpoint paths come from trainers, so they are untrusted: a report must name a file inside the
// job's checkpoint folder (spec.checkpoint.dir), the agent deletes nothing outside that folder
// (agent/checkpointDeletion.ts), and its flash saver writes nothing outside it (agent/flashCheckpoint.ts).
// The words are checked always; where this host sees the folder, so are the real folders
// (symlinks resolved), so `<dir>/link/passwd` with `<dir>/link -> /etc` is refused too.
import { realpath } from 'node:fs/promises';
import path from 'node:path';

export type CheckpointPathVerdict =
  /** `realPath`: the file with its folder's symlinks resolved, when this host sees the folder. */
  | { ok: true; realPath?: string }
  /** `reason`: why, in words for the trainer's author (the path, the folder, what to do). */
  | { ok: false; reason: string };

const segments = (p: string) => p.split('/').filter((s) => s !== '' && s !== '.');

/**
 * Whether `file` lies strictly inside `dir` by its words alone. An absolute `dir` (local, Ray on
 * this machine's files) needs an absolute `file` below it. A relative `dir` (Kubernetes, Ray
 * working_dir: relative to the process's working directory, which the API does not know) takes a
 * relative file below it, or an absolute one whose folders contain `dir`'s in a row.
 */
function insideByName(dir: string, file: string): boolean {
  const d = segments(dir);
  const f = segments(file);
  if (path.isAbsolute(dir)) return path.isAbsolute(file) && f.length > d.length && d.every((s, i) => f[i] === s);
  const startsAt = (at: number) => f.length > at + d.length && d.every((s, i) => f[at + i] === s);
  if (!path.isAbsolute(file)) return startsAt(0);
  return f.some((_, at) => startsAt(at));
}

/** The nearest existing folder of `p` (`at`, an ancestor or `p` itself) and its real path. */
async function realAncestor(p: string): Promise<{ at: string; real: string } | undefined> {
  for (let at = p; ; at = path.dirname(at)) {
    const real = await realpath(at).catch(() => undefined);
    if (real !== undefined) return { at, real };
    if (at === path.dirname(at)) return undefined;
  }
}

/**
 * Checks a trainer's checkpoint path `file` against the job's checkpoint folder `dir`
 * (spec.checkpoint.dir, absolute or relative without ".."). Refused: a NUL, a ".." segment, a
 * path outside `dir` by name, and (when this host sees `dir`) a path whose folder really lies
 * outside `dir`'s real path through a symlink. The file itself need not exist. Never throws.
 */
export async function checkCheckpointPath(dir: string, file: string): Promise<CheckpointPathVerdict> {
  const where = `the job's checkpoint folder ${JSON.stringify(dir)} (spec.checkpoint.dir)`;
  if (file.includes('\0')) return { ok: false, reason: 'must not contain a NUL character' };
  if (file.split(/[/\\]/).includes('..')) {
    return { ok: false, reason: `${JSON.stringify(file)} must not contain "..": report the file's path inside ${where}` };
  }
  if (!insideByName(dir, file)) return { ok: false, reason: `${JSON.stringify(file)} is outside ${where}: save checkpoints inside it` };
  if (!path.isAbsolute(dir)) return { ok: true };
  const realDir = await realpath(dir).catch(() => undefined);
  // Storage this host cannot see: the words are all there is to check, and nothing here is deleted.
  if (realDir === undefined) return { ok: true };
  const folder = await realAncestor(path.dirname(file));
  const rel = folder === undefined ? '..' : path.relative(realDir, folder.real);
  if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    return { ok: false, reason: `${JSON.stringify(file)} leads outside ${where} through a symlink (its folder is really ${JSON.stringify(folder?.real)})` };
  }
  return { ok: true, realPath: path.join(folder!.real, path.relative(folder!.at, file)) };
}
