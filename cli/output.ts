// Output that survives its reader going away: `rover … | head` and `rover up | tee log` then
// Ctrl-C close the pipe under us, and a write to a closed pipe (EPIPE) must neither crash the
// CLI with a stack trace nor stop `rover up` from taking its stack down.

type ClosedHandler = () => void;
let onClosed: ClosedHandler | undefined;
let closed = false;

/** True once stdout or stderr has lost its reader. */
export function outputClosed(): boolean {
  return closed;
}

/**
 * What to do when the reader goes away, instead of exiting at once (the default, as SIGPIPE
 * would end a C program: `rover logs | head` stops reading the logs). `rover up` stops its stack.
 */
export function whenOutputCloses(handler: ClosedHandler): void {
  onClosed = handler;
}

/**
 * Installs 'error' listeners on stdout and stderr: EPIPE (and writes after it) are dropped;
 * the first one runs the handler of whenOutputCloses, or exits with the current exit code.
 * Any other stream error is rethrown.
 */
export function installPipeGuard(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
      if (closed) return;
      closed = true;
      if (onClosed) onClosed();
      else process.exit();
    });
  }
}

/** Seconds between "still …" lines: no step of the CLI stays silent longer than this. */
const STILL_WORKING_EVERY_MS = 10_000;

/**
 * Awaits `task`, saying `still <what> (N s)` every 10 s until it settles, so a long install or
 * wait never looks like a hang.
 */
export async function sayWhileWaiting<T>(task: Promise<T>, what: string, say: (message: string) => void): Promise<T> {
  const started = Date.now();
  const ticker = setInterval(() => say(`still ${what} (${Math.round((Date.now() - started) / 1000)} s)`), STILL_WORKING_EVERY_MS);
  try {
    return await task;
  } finally {
    clearInterval(ticker);
  }
}

/**
 * Runs `fn` with a signal that Ctrl-C (SIGINT) or SIGTERM aborts, for commands that follow
 * output until interrupted (`logs -f`, `events -f`); the handlers are removed when it ends.
 */
export async function untilInterrupted<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(stop.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
