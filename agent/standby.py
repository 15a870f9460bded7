"""Rover's warm standby (agent/standby.ts starts it; never run it yourself).

A Python process that has already started the interpreter and imported the job's
spec.entrypoint.preload modules, waiting for its round. On the agent's go it takes the round's
environment, argv and working directory and runs the training script as __main__, exactly as
`python [options] script.py args` or `python [options] -m module args` would have.

  argv   standby.py (script PATH | module NAME) [PRELOAD_MODULE ...]
         (the interpreter options of the entrypoint come before standby.py)
  fd 3   a pipe to the agent: one line, `ready` once every preload module is imported, or
         `failed <message>` (the traceback on stderr); then closed, before any user code runs
  stdin  the go: one JSON line {"set": {...}, "argv": [...], "cwd": "...", "cold": [...],
         "env": {...}}: `set` holds the variables that arrive only now (the round's); `cold` and
         `env` are the cold command line and its whole environment, for a standby that failed.
         End of file instead (the agent dropped this standby, or died): exit 0 at once.
         After the go, stdin is /dev/null, as for a process the agent starts cold.

The standby itself starts no thread, imports nothing beyond the standard library and the preload
list, and never touches CUDA; it waits in one blocking read. The agent starts it with the
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
    if kind == "script":
        _run_script(target)
    else:
        _run_module(target)


main()
