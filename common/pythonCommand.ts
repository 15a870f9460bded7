// How a Python entrypoint's command line splits, for warm standby processes (agent/standby.ts,
// spec.entrypoint.preload): `python [interpreter options] script.py args…` or
// `python [interpreter options] -m module args…`. Anything else (`-c code`, a script on stdin,
// `-i`, a wrapper such as `sh -c`) is not a Python entrypoint here: it always starts cold.

export interface PythonCommand {
  /** The interpreter options before the script or -m, as written (e.g. ['-u', '-X', 'dev']). */
  options: string[];
  target: { kind: 'script'; path: string } | { kind: 'module'; name: string };
  /** The script's own arguments. */
  rest: string[];
}

/** python, python3, python3.11, a venv's bin/python… by file name, whatever folder it is in. */
const INTERPRETER = /^python(\d+(\.\d+)?)?$/;
/** Flags without a value that may be bundled (-uB). */
const FLAGS = new Set('bBdEIOPqsSuv');
/** Options whose value is the next argument or the rest of this one (-Xdev, -W error). */
const WITH_VALUE = new Set(['W', 'X']);

/** The split of `command args`, or undefined when it is not `python [options] script|-m module …`. */
export function parsePythonCommand(command: string, args: readonly string[]): PythonCommand | undefined {
  if (!INTERPRETER.test(command.split('/').at(-1) ?? '')) return undefined;
  const options: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      const path = args[i + 1];
      return path === undefined || path === '-' ? undefined : { options, target: { kind: 'script', path }, rest: args.slice(i + 2) };
    }
    if (arg === '-') return undefined; // the script on stdin
    if (!arg.startsWith('-')) return { options, target: { kind: 'script', path: arg }, rest: args.slice(i + 1) };
    if (arg.startsWith('--')) {
      // --check-hash-based-pycs MODE is the one long option that changes a run; help and version do not train.
      if (arg !== '--check-hash-based-pycs' || args[i + 1] === undefined) return undefined;
      options.push(arg, args[++i]!);
      continue;
    }
    // A bundle of short options: flags, then at most one that takes a value (-m, -W, -X), which
    // is the rest of the bundle or the next argument (-Xdev, -X dev, -um pkg.train).
    const letters = arg.slice(1);
    const at = [...letters].findIndex((c) => !FLAGS.has(c));
    if (at < 0) {
      options.push(arg);
      continue;
    }
    const letter = letters[at]!;
    const attached = letters.slice(at + 1);
    const value = attached || args[i + 1];
    if (value === undefined || (letter !== 'm' && !WITH_VALUE.has(letter))) return undefined; // -c, -i, -h, -x, …
    if (!attached) i++;
    if (at > 0) options.push(`-${letters.slice(0, at)}`);
    if (letter === 'm') return { options, target: { kind: 'module', name: value }, rest: args.slice(i + 1) };
    options.push(`-${letter}`, value);
  }
  return undefined;
}
