// The `rover` command. Start-up stays fast by loading only the module of the command being run:
// the command table below names each command's module, and its description is the one place
// the command is described (the top-level help lists the table without loading any module).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { repoRoot } from '../common/repoRoot.ts';
import { installPipeGuard } from './output.ts';

type Register = (program: Command) => void;

/** Each command, its module (loaded only when the command runs), and its description. */
const COMMANDS: readonly { name: string; description: string; load: () => Promise<Register> }[] = [
  { name: 'up', description: 'start the embedded stack: Temporal dev server + Web UI, Rover worker, Rover API', load: loadUp },
  { name: 'down', description: 'stop a stack started with `rover up --detach`', load: loadUp },
  { name: 'validate', description: 'check a job spec (YAML or JSON) and print it with every default filled in', load: async () => (await import('./validate.ts')).registerValidateCommand },
  { name: 'submit', description: 'validate a job spec (YAML/JSON) and start its elasticJob workflow', load: loadJobs },
  { name: 'status', description: "a job's phase, world size, step, rate and nodes", load: loadJobs },
  { name: 'watch', description: "refresh a job's status until it ends", load: async () => (await import('./watch.ts')).registerWatchCommand },
  { name: 'list', description: 'jobs known to Temporal, newest first', load: loadJobs },
  { name: 'scale', description: 'change the number of nodes of a running job', load: loadJobs },
  { name: 'stop', description: 'stop a running job: its nodes are torn down and it ends as STOPPED', load: loadJobs },
  { name: 'logs', description: "print a job's node logs, run by run (local files, Kubernetes pods, Ray jobs)", load: async () => (await import('./logs.ts')).registerLogsCommand },
  { name: 'events', description: "print a job's events: node lifecycle, rendezvous, classified failures, diagnosis (reads ROVER_STORE_URL)", load: async () => (await import('./events.ts')).registerEventsCommand },
  { name: 'brain', description: 'the Brain: configuration sources and what a job gets', load: async () => (await import('./brain.ts')).registerBrainCommands },
  { name: 'tools', description: 'install the servers Rover runs against into .tools/', load: async () => (await import('./tools.ts')).registerToolsCommand },
];

async function loadUp(): Promise<Register> {
  const [{ registerUpCommands }, { submitDemoJob }] = await Promise.all([import('./up.ts'), import('./demo.ts')]);
  return (program) => registerUpCommands(program, submitDemoJob);
}

async function loadJobs(): Promise<Register> {
  return (await import('./jobs.ts')).registerJobCommands;
}

/** The command named on the command line (`rover help <command>` too), if it is one of ours. */
function requestedCommand(argv: readonly string[]): (typeof COMMANDS)[number] | undefined {
  const words = argv.slice(2).filter((a) => !a.startsWith('-'));
  const name = words[0] === 'help' ? words[1] : words[0];
  return COMMANDS.find((c) => c.name === name);
}

installPipeGuard();
const { version } = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
const program = new Command('rover')
  .description('Elastic, fault-tolerant distributed training jobs on Temporal')
  .version(version, '-V, --version', 'print the rover version')
  .showHelpAfterError();

const requested = requestedCommand(process.argv);
try {
  if (requested) (await requested.load())(program);
  // Every other command is listed by name and description only, for the help and for typos.
  for (const { name, description } of COMMANDS) {
    const registered = program.commands.find((c) => c.name() === name);
    if (registered) registered.description(description);
    else program.command(name).description(description);
  }
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`rover: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
