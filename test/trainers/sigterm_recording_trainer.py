#!/usr/bin/env python3
"""A test trainer that leaves evidence of how it was supervised. Standard library only.

It steps alone (no peers: a leftover process keeps training instead of dying with its round),
printing `ROVER_STEP <n>` for the agent, and can:
  --record FILE       append one JSON line when it starts: rank, round, incarnation, pid, ppid
                      (the wrapper when run behind `sh -c`), pgid, sid
  --sigterm-log FILE  install a SIGTERM handler that appends `term <pid>`, "saves" for
                      --save-time seconds, appends `saved <pid>` and exits 143. A second SIGTERM
                      during the save runs the handler again inside the first, as it would for a
                      real trainer, so every delivery shows up as a line.
  --exit-at-step N --exit-code C --exit-rank R --once MARKER
                      rank R exits with C at step N, only while MARKER does not exist (it is
                      created first), so the job's next round runs clean.
Exits 0 after --steps steps. Output goes straight to fd 1 and a closed pipe is ignored, so it
keeps training when nobody reads it (an orphan whose agent died), as a trainer that logs to a
file would.
"""
import argparse, json, os, signal, sys, time


def append(path, line):
    # O_APPEND writes of one short line are atomic, so ranks may share a file.
    with open(path, "a") as f:
        f.write(line + "\n")


def emit(line, fd=1):
    try:
        os.write(fd, (line + "\n").encode())
    except BrokenPipeError:
        pass


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--step-time", type=float, default=0.05)
    p.add_argument("--record")
    p.add_argument("--sigterm-log")
    p.add_argument("--save-time", type=float, default=0.5)
    p.add_argument("--exit-at-step", type=int)
    p.add_argument("--exit-code", type=int, default=3)
    p.add_argument("--exit-rank", type=int, default=0)
    p.add_argument("--once")
    args = p.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    pid = os.getpid()

    if args.sigterm_log:
        def on_sigterm(signum, frame):
            append(args.sigterm_log, f"term {pid}")
            time.sleep(args.save_time)
            append(args.sigterm_log, f"saved {pid}")
            sys.exit(128 + signum)

        signal.signal(signal.SIGTERM, on_sigterm)

    if args.record:
        append(args.record, json.dumps({
            "rank": rank, "round": int(os.environ.get("ROVER_ROUND", "0")),
            "incarnation": int(os.environ.get("ROVER_INCARNATION", "0")), "pid": pid,
            "ppid": os.getppid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
        }))

    for step in range(1, args.steps + 1):
        time.sleep(args.step_time)
        emit(f"ROVER_STEP {step}")
        if step == args.exit_at_step and rank == args.exit_rank:
            if args.once is None or not os.path.exists(args.once):
                if args.once:
                    open(args.once, "w").close()
                emit(f"rank {rank}: exiting with {args.exit_code} at step {step}", fd=2)
                return args.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
