// Memory enforcement for training processes where the agent cannot use a cgroup: each process
// runs under `prlimit --data=<bytes>` (util-linux), which caps its heap and private writable
// mappings (RLIMIT_DATA; shared libraries and file mappings do not count, unlike RLIMIT_AS).
// Allocating past it fails inside the process (Python: MemoryError); works for any command.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

let prlimitPath: string | null | undefined;

function findPrlimit(): string | null {
  if (prlimitPath !== undefined) return prlimitPath;
  prlimitPath = null;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat('/usr/bin', '/bin')) {
    const candidate = path.join(dir, 'prlimit');
    try {
      accessSync(candidate, constants.X_OK);
      prlimitPath = candidate;
      break;
    } catch {
      // keep looking
    }
  }
  return prlimitPath;
}

/** The command line that runs `command args` with at most `bytes` of data memory; unchanged without a limit or prlimit. */
export function withMemoryLimit(command: string, args: readonly string[], bytes: number | undefined): { command: string; args: readonly string[]; enforced: boolean } {
  const prlimit = bytes && bytes > 0 ? findPrlimit() : null;
  if (!prlimit || !bytes) return { command, args, enforced: false };
  // prlimit sets the limit and execs the command: same pid, same signals.
  return { command: prlimit, args: [`--data=${Math.floor(bytes)}`, '--', command, ...args], enforced: true };
}
