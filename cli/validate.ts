// `rover validate <file>`: check a job spec without submitting it.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { formatSpecErrors, formatSpecWarnings, loadJobSpecFile } from '../common/spec/index.ts';

/** Exit code for a spec that does not validate (or cannot be read). */
export const EXIT_INVALID_SPEC = 2;

export function registerValidateCommand(program: Command): void {
  program
    .command('validate')
    .argument('<file>', 'job spec file, e.g. examples/demo.yaml')
    .option('--json', 'print the resolved spec as JSON instead of YAML')
    .addHelpText(
      'after',
      [
        '',
        'Durations print as milliseconds, memory as bytes, CPU as cores.',
        "For the local backend, relative paths (entrypoint.workdir, checkpoint.dir) resolve against the spec file's folder,",
        "which is also the default workdir; the resolved spec shows them absolute. A missing entrypoint script is a warning.",
        'Field reference: docs/spec-reference.md',
      ].join('\n'),
    )
    .action(async function (this: Command, file: string, opts: { json?: boolean }) {
      // Commander's output hooks, so tests (and embedding programs) can capture what is printed.
      const out = this.configureOutput();
      const result = await loadJobSpecFile(file);
      if (result.ok) {
        // Warnings go to stderr, so stdout stays the spec alone (e.g. for --json > spec.json).
        if (result.warnings.length > 0) out.writeErr?.(`${formatSpecWarnings(result.warnings, file)}\n`);
        out.writeOut?.(opts.json ? `${JSON.stringify(result.spec, null, 2)}\n` : stringify(result.spec));
        return;
      }
      const count = result.errors.length;
      out.writeErr?.(`${formatSpecErrors(result.errors, file)}\n${file}: ${count} error${count === 1 ? '' : 's'} (field reference: docs/spec-reference.md)\n`);
      process.exitCode = EXIT_INVALID_SPEC;
    });
}
