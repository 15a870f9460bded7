// Scratch folders of the benchmarks: removed when the benchmark exits with status 0, kept (and
// named on stderr) when it fails, so the stack's logs are there to read.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const scratch: string[] = [];

process.on('exit', (code) => {
  for (const dir of scratch) {
    if (code === 0) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`kept ${dir} for its logs (the benchmark exited with status ${code})\n`);
  }
});

/** A new folder `<tmp>/rover-bench-<label>-XXXXXX`, removed at exit unless the benchmark fails. */
export function scratchDir(label: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `rover-bench-${label}-`));
  scratch.push(dir);
  return dir;
}
