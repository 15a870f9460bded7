// spec.entrypoint: what each training process runs. The command is a program name or a list
// [program, args…]; either way the resolved spec has one shape, command + args.
import { z } from 'zod';
import { describeValue } from './errors.ts';
import { LIMITS, filePath, list, map, requiredSection, str, text } from './fields.ts';

/** Variables the agent sets for every training process (torchrun's contract). */
const RESERVED_ENV = [
  'RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'GROUP_RANK', 'GROUP_WORLD_SIZE',
  'ROLE_RANK', 'ROLE_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'TORCHELASTIC_RESTART_COUNT',
  'TORCHELASTIC_MAX_RESTARTS', 'TORCHELASTIC_RUN_ID',
];

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
  },
  'what each training process runs, e.g. entrypoint: {command: [python3, train.py]}',
).transform(({ command, args, env, workdir }) => {
  // The resolved spec keeps one shape (command + args), whichever form was written.
  const [program, ...leading] = Array.isArray(command) ? command.map(String) : [command];
  return { command: program!, args: [...leading, ...args], env, ...(workdir !== undefined && { workdir }) };
});
