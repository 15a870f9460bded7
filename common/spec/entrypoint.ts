// spec.entrypoint: what each training process runs. The command is a program name or a list
// [program, args…]; either way the resolved spec has one shape, command + args.
import { z } from 'zod';
import { parsePythonCommand } from '../pythonCommand.ts';
import { describeValue } from './errors.ts';
import { LIMITS, filePath, list, map, requiredSection, str, text } from './fields.ts';

/** Variables the agent sets for every training process (torchrun's contract). */
const RESERVED_ENV = [
  'RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'GROUP_RANK', 'GROUP_WORLD_SIZE',
  'ROLE_RANK', 'ROLE_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'TORCHELASTIC_RESTART_COUNT',
  'TORCHELASTIC_MAX_RESTARTS', 'TORCHELASTIC_RUN_ID',
];

/** A dotted Python module name: torch, torch.distributed, my_pkg.models. */
const MODULE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

const PROGRAM_MESSAGE =
  'must be one program, run without a shell; put its arguments in spec.entrypoint.args or write a list (e.g. command: [python3, train.py])';

/**
 * `command: [python3, train.py]` (the Kubernetes form): items are strings (YAML numbers and
 * booleans too), the first non-empty. Items are checked one by one so a bad item is an error on
 * its own path; no transform here, inside the union it would hide those errors.
 */
const commandList = list(
  // The JSON Schema still shows the items' type.
  z.unknown().meta({ anyOf: [{ type: 'string', maxLength: LIMITS.text }, { type: 'number' }, { type: 'boolean' }] }),
)
  .min(1, 'must not be empty: the first item is the program (e.g. [python3, train.py])')
  .superRefine((items, ctx) => {
    items.forEach((item, i) => {
      const issue = (message: string) => ctx.addIssue({ code: 'custom', path: [i], message, input: item });
      if (typeof item !== 'string' && typeof item !== 'number' && typeof item !== 'boolean') issue(`must be a string (got ${describeValue(item)})`);
      else if (String(item).length > LIMITS.text) issue(`must be at most ${LIMITS.text} characters long (got ${String(item).length})`);
      else if (i === 0 && item === '') issue('must not be empty: it is the program to run');
    });
  });

export const entrypoint = requiredSection(
  {
    command: z
      .union([str().min(1, { abort: true }).regex(/^\S+$/, PROGRAM_MESSAGE), commandList], {
        error: (iss) => {
          if (iss.input === undefined) return 'is required: the program each process runs, e.g. python3 or [python3, train.py]';
          if (iss.input === '') return 'must not be empty: it is the program each process runs, e.g. python3';
          if (typeof iss.input === 'string' && iss.input.length > LIMITS.text) return `must be at most ${LIMITS.text} characters long (got ${iss.input.length})`;
          return `must be a program name or a list [program, args…] (got ${describeValue(iss.input)})`;
        },
      })
      .describe('Program each training process runs (looked up on PATH), without a shell; or a list [program, arg, …] whose items after the first go before args.'),
    args: list(text).prefault([]).describe('Arguments for the command; numbers and booleans become strings.'),
    env: map(
      str()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and "_", not starting with a digit')
        .refine((name) => !RESERVED_ENV.includes(name), 'is set by Rover for every process (torchrun contract); remove it'),
      text,
    )
      .prefault({})
      .describe('Extra environment variables for the training processes.'),
    workdir: filePath
      .optional()
      .describe("Working directory of the processes. Local backend, and Ray without runtimeEnv.working_dir: relative to the spec file's folder, which is also the default."),
    preload: list(str().regex(MODULE_NAME, 'must be a Python module name, e.g. torch or torch.distributed'))
      .optional()
      .describe(
        'Python modules to import ahead of time (e.g. [torch]): each node keeps one warm standby process per local rank that already started Python and imported them, and a restart runs the script in it instead of a cold start. Only for `python script.py …` or `python -m module …`. Default: none, every start is cold.',
      ),
  },
  'what each training process runs, e.g. entrypoint: {command: [python3, train.py]}',
)
  .superRefine(({ command, args, preload }, ctx) => {
    // Only once command and args are valid (their own errors say what is wrong with them).
    if (!preload?.length || !Array.isArray(args)) return;
    const words: unknown[] = [...(Array.isArray(command) ? command : [command]), ...args];
    if (!words.every((w) => ['string', 'number', 'boolean'].includes(typeof w))) return;
    const [program, ...rest] = words.map(String);
    if (!program || parsePythonCommand(program, rest)) return;
    ctx.addIssue({
      code: 'custom',
      path: ['preload'],
      message: `needs a Python entrypoint: \`python [options] script.py …\` or \`python [options] -m module …\` (got ${JSON.stringify([program, ...rest].join(' ').slice(0, 80))})`,
    });
  })
  .transform(({ command, args, env, workdir, preload }) => {
    // The resolved spec keeps one shape (command + args), whichever form was written.
    const [program, ...leading] = Array.isArray(command) ? command.map(String) : [command];
    return { command: program!, args: [...leading, ...args], env, ...(workdir !== undefined && { workdir }), ...(preload?.length && { preload }) };
  });
