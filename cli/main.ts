// The `rover` command.
import { Command } from 'commander';
import { registerBrainCommands } from './brain.ts';
import { submitDemoJob } from './demo.ts';
import { registerEventsCommand } from './events.ts';
import { registerJobCommands } from './jobs.ts';
import { registerLogsCommand } from './logs.ts';
import { registerToolsCommand } from './tools.ts';
import { registerUpCommands } from './up.ts';
import { registerValidateCommand } from './validate.ts';

const program = new Command('rover')
  .description('Elastic, fault-tolerant distributed training jobs on Temporal')
  .showHelpAfterError();

registerUpCommands(program, submitDemoJob);
registerValidateCommand(program);
registerJobCommands(program);
registerLogsCommand(program);
registerEventsCommand(program);
registerBrainCommands(program);
registerToolsCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`rover: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
