#!/usr/bin/env python3
"""A test trainer that writes down what a training process can see, then exits 0. Stdlib only.

Usage: env_dump.py OUT.json
Writes {"env": its own os.environ, "agent_env": the environment its parent (the agent) was
started with, read from /proc/<ppid>/environ as any process of the same user can}.
"""
import json, os, sys


def parent_environ():
    try:
        with open(f"/proc/{os.getppid()}/environ", "rb") as f:
            raw = f.read()
    except OSError as e:
        return {"__unreadable__": str(e)}
    pairs = (item.decode("utf-8", "replace").split("=", 1) for item in raw.split(b"\0") if item)
    return {p[0]: p[1] if len(p) > 1 else "" for p in pairs}


def main():
    out = sys.argv[1]
    tmp = f"{out}.tmp"
    with open(tmp, "w") as f:
        json.dump({"env": dict(os.environ), "agent_env": parent_environ()}, f)
    os.replace(tmp, out)  # whole or not at all: the test reads it once it exists
    print("ROVER_STEP 1", flush=True)


if __name__ == "__main__":
    main()
