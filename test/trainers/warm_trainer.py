#!/usr/bin/env python3
"""A test trainer for warm standby processes (agent/standby.ts). Standard library only.

It imports slow_import (a module as slow to import as torch), then:
  --record FILE   appends one JSON line: what a restart test needs to see (pid, ppid, pgid, sid,
                  the rank variables, how often this process imported slow_import and when,
                  when it started)
  --dump FILE     writes what a cold and a warm start must agree on: environment, argv, cwd,
                  sys.path, __main__'s attributes, stdin, open files, threads
  --raise         raises RuntimeError at start (a traceback); --exit-code C exits with C at start;
                  --exit-message M exits with sys.exit(M) at start
  --exit-chores FILE   leaves work for the interpreter's exit: a non-daemon thread that appends
                  `thread` to FILE a moment later, an atexit handler that appends `atexit`, and
                  FILE.open, a file kept open in a global with its text still in the buffer
  --faulthandler  dumps its stacks to stderr on SIGUSR1 (hang evidence)
  --steps N --step-time S   prints `ROVER_STEP <n>` N times (default: until stopped)
"""
import argparse, atexit, json, os, sys, threading, time

import slow_import


def imports_of(pid):
    log = os.environ.get("SLOW_IMPORT_LOG")
    if not log or not os.path.exists(log):
        return []
    with open(log) as f:
        return [r for r in map(json.loads, filter(None, f.read().split("\n"))) if r["pid"] == pid]


def write(path, obj, append=False):
    if append:
        with open(path, "a") as f:
            f.write(json.dumps(obj) + "\n")
        return
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
    os.replace(path + ".tmp", path)


LEFT_OPEN = None


def leave_exit_chores(path):
    global LEFT_OPEN

    def append(line):
        with open(path, "a") as f:
            f.write(line + "\n")

    def late():
        time.sleep(0.3)
        append("thread")

    threading.Thread(target=late).start()
    atexit.register(append, "atexit")
    LEFT_OPEN = open(path + ".open", "w", buffering=65536)
    LEFT_OPEN.write("still in the buffer")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--record")
    p.add_argument("--dump")
    p.add_argument("--raise", dest="fail", action="store_true")
    p.add_argument("--exit-code", type=int)
    p.add_argument("--exit-message")
    p.add_argument("--exit-chores")
    p.add_argument("--faulthandler", action="store_true")
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--step-time", type=float, default=0.05)
    args = p.parse_args()
    started = time.time()
    pid = os.getpid()
    main_module = sys.modules["__main__"]
    if args.dump:
        write(args.dump, {
            "env": dict(os.environ), "argv": sys.argv, "cwd": os.getcwd(), "path": sys.path,
            "main": {"name": __name__, "file": getattr(main_module, "__file__", None),
                     "package": getattr(main_module, "__package__", "unset"),
                     "spec": None if __spec__ is None else [__spec__.name, __spec__.origin],
                     "loader": type(getattr(main_module, "__loader__", None)).__name__,
                     "same_globals": main_module.__dict__ is globals()},
            "stdin": os.readlink("/proc/self/fd/0"), "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
            "threads": threading.active_count(), "tasks": len(os.listdir("/proc/self/task")),
        })
    if args.record:
        write(args.record, {
            "pid": pid, "ppid": os.getppid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
            "rank": os.environ.get("RANK"), "world_size": os.environ.get("WORLD_SIZE"),
            "local_rank": os.environ.get("LOCAL_RANK"), "round": os.environ.get("ROVER_ROUND"),
            "restart": os.environ.get("TORCHELASTIC_RESTART_COUNT"),
            "imports": [r["at"] for r in imports_of(pid) if r["module"] == "slow_import"], "started": started,
        }, append=True)
    if args.faulthandler:
        import faulthandler, signal
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    if args.exit_chores:
        leave_exit_chores(args.exit_chores)
    if args.fail:
        raise RuntimeError("boom at start")
    if args.exit_message is not None:
        sys.exit(args.exit_message)
    if args.exit_code is not None:
        sys.exit(args.exit_code)
    for step in range(1, args.steps + 1):
        time.sleep(args.step_time)
        print(f"ROVER_STEP {step}", flush=True)


if __name__ == "__main__":
    main()
