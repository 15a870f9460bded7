"""Rover's warm standby (agent/standby.ts starts it; never run it yourself).

A Python process that has already started the interpreter and imported the job's
spec.entrypoint.preload modules, waiting for its round. On the agent's go it takes the round's
environment, argv and working directory and runs the training script as __main__, exactly as
`python [options] script.py args` or `python [options] -m module args` would have.

  argv   standby.py (script PATH | module NAME) [PRELOAD_MODULE ...]
         (the interpreter options of the entrypoint come before standby.py)
  fd 3   a pipe to the agent: one line, `ready` once every preload module is imported, or
         `failed <message>` (the traceback on stderr); then closed, before any user code runs
  exit   as the interpreter's own: the exit status, the message or traceback, non-daemon threads
         joined, atexit handlers, open files flushed; only the module teardown after them is skipped
         (see _exit_as_python).
  stdin  the go: one JSON line {"set": {...}, "argv": [...], "cwd": "...", "cold": [...],
         "env": {...}}: `set` holds the variables that arrive only now (the round's); `cold` and
         `env` are the cold command line and its whole environment, for a standby that failed.
         End of file instead (the agent dropped this standby, or died): exit 0 at once.
         After the go, stdin is /dev/null, as for a process the agent starts cold.

The standby itself starts no thread, imports nothing beyond the standard library and the preload
list (and torch._dynamo when torch is among them: see _warm_torch), and never touches CUDA; it
waits in one blocking read. The agent starts it with the
trainer's environment less the round's variables and checks, before the go, that nothing else
changed; so after the go os.environ is what a cold start of the same command would have. A
standby whose preload failed still runs the script on the go: it execs the cold command line.
"""
import os
import sys


def _path0(kind, target):
    """sys.path[0] as `python script.py` (the script's real folder) or `python -m` (the cwd) sets it."""
    if kind == "script":
        return os.path.dirname(os.path.realpath(target))
    return os.getcwd()


def _read_go():
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(0, 65536)
        if not chunk:
            return None
        data += chunk
    import json
    return json.loads(data)


def _say(line):
    try:
        os.write(3, (line.replace("\n", " ")[:4000] + "\n").encode())
    except OSError:
        pass  # the agent stopped listening; the go (or end of file) decides what happens next
    try:
        os.close(3)
    except OSError:
        pass


def _trimmed_excepthook(hook, skip):
    """The user's traceback as a cold start prints it: without this file's frames."""
    def excepthook(kind, value, tb):
        while tb is not None and tb.tb_frame.f_code.co_filename in skip:
            tb = tb.tb_next
        if isinstance(value, BaseException):
            value.__traceback__ = tb  # what the default hook prints, whatever tb it is given
        hook(kind, value, tb)
    return excepthook


def _warm_torch():
    """torch imports torch._dynamo lazily, on the first optimizer a trainer builds (torch.optim's
    methods are wrapped to disable dynamo since torch 2.0): 1.5-2.5 s on the restart's critical
    path here. A standby that imported torch pays it while it waits. Best effort: a torch without
    dynamo simply imports it later, as a cold start would. Starts no thread, touches no CUDA."""
    if "torch" not in sys.modules:
        return
    try:
        import torch._dynamo  # noqa: F401
    except Exception:
        pass


def _exit_status(exit):
    """The status `python script.py` ends with after SystemExit(code): None is 0, an integer is
    itself, anything else is printed to stderr and is 1 (CPython's handle_system_exit)."""
    code = exit.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        sys.stderr.write(f"{code}\n")
    except Exception:
        pass
    return 1


def _flush_open_files():
    """What the interpreter's module teardown would do for files the script left open: flush
    their buffers (a log file kept in a global, for one)."""
    import gc, io
    for obj in gc.get_objects():
        if isinstance(obj, io.IOBase):
            try:
                if not obj.closed:
                    obj.flush()
            except Exception:
                pass


def _exit_as_python(error):
    """Ends the process as the interpreter would after the script ended with `error` (None: it
    returned), less the teardown of every module: with torch loaded that teardown takes about a
    second, and a restart's new processes wait for the old ones to be gone. Kept, in CPython's
    order (Py_FinalizeEx): the traceback or SystemExit message, the wait for non-daemon threads,
    the atexit handlers (logging, multiprocessing, tempfile and the user's own), then open files
    flushed. Dropped: __del__ of objects still alive at exit, which Python does not promise to run.
    An uncaught KeyboardInterrupt ends the process by SIGINT, as Python 3.8+ does."""
    interrupted = isinstance(error, KeyboardInterrupt)
    if error is None:
        status = 0
    elif isinstance(error, SystemExit):
        status = _exit_status(error)
    else:
        try:
            sys.excepthook(type(error), error, error.__traceback__)
        except BaseException:
            pass
        status = 1
    import atexit, threading
    for step in (getattr(threading, "_shutdown", None), atexit._run_exitfuncs, _flush_open_files,
                 sys.stdout.flush, sys.stderr.flush):
        try:
            if step is not None:
                step()
        except BaseException:  # a signal handler's SystemExit meanwhile: the exit goes on, as in CPython
            pass
    if interrupted:
        import signal
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        status = 130
    os._exit(status & 0xFF)


def _run_script(path):
    """Runs a script file as __main__ with the attributes `python path` gives it."""
    import builtins, importlib.machinery
    full = os.path.join(os.getcwd(), path)  # absolute, not normalised: what the interpreter does
    if not os.path.isfile(full):  # a folder or zip with __main__.py: runpy knows those
        import runpy
        runpy.run_path(path, run_name="__main__")
        return
    loader = importlib.machinery.SourceFileLoader("__main__", full)
    code = loader.source_to_code(loader.get_data(full), full)
    main = type(sys)("__main__")
    main.__dict__.update(__file__=full, __loader__=loader, __spec__=None, __package__=None,
                         __cached__=None, __builtins__=builtins)
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def _run_module(name):
    """`python -m name`: the interpreter's own entry into runpy, in a fresh __main__."""
    import runpy
    sys.modules["__main__"] = type(sys)("__main__")
    runpy._run_module_as_main(name, alter_argv=True)


def main():
    kind, target, preload = sys.argv[1], sys.argv[2], sys.argv[3:]
    # Preloads resolve as the script's own imports will (a module next to the script, or in the
    # cwd for -m); -I and -P put no folder there, and neither is one put here.
    sets_path0 = not (sys.flags.isolated or getattr(sys.flags, "safe_path", False))
    if sets_path0:
        sys.path[0] = _path0(kind, target)
    failed = None
    try:
        import importlib
        for name in preload:
            importlib.import_module(name)
        _warm_torch()
    except BaseException as e:  # SystemExit or KeyboardInterrupt from a module too: not warm
        import traceback
        traceback.print_exc()
        failed = f"importing the preload modules failed: {type(e).__name__}: {e}"
    _say(f"failed {failed}" if failed else "ready")

    go = _read_go()
    if go is None:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(go["cwd"])
    if failed:
        # Not warm: start exactly as cold, in this process (same pid, same process group).
        os.execvpe(go["cold"][0], go["cold"], go["env"])
    # The rest of the environment is the one this process started with, as the interpreter (and
    # a launcher such as a pyenv shim in front of it) left it: what a cold start would see.
    os.environ.update(go["set"])

    sys.argv = go["argv"]
    if sets_path0:
        sys.path[0] = _path0(kind, target)
    sys.excepthook = _trimmed_excepthook(sys.excepthook, {os.path.abspath(__file__)})
    try:
        if kind == "script":
            _run_script(target)
        else:
            _run_module(target)
    except BaseException as e:  # noqa: B902 - every way out of the script, as the interpreter sees it
        _exit_as_python(e)
    _exit_as_python(None)


main()
