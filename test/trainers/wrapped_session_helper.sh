#!/bin/sh
# A launcher that starts a helper in a session of its own, as `subprocess.Popen(...,
# start_new_session=True)` or `setsid cmd &` would, then runs the trainer behind itself
# (sh → python3, sh stays). The helper is in none of the trainer's process groups, so stopping
# the groups misses it; only a stop that finds the node's processes by their environment (which
# the helper inherited) reaches it.
# $1: file to append "helper <pid>" to; the other arguments go to sigterm_recording_trainer.py.
helpers="$1"
shift
# setsid() in the helper itself, so $! is the helper's pid; its output goes nowhere, so it holds
# no pipe of the agent's open.
python3 -c 'import os, time; os.setsid(); time.sleep(300)' >/dev/null 2>&1 &
echo "helper $!" >> "$helpers"
python3 "$(dirname "$0")/sigterm_recording_trainer.py" "$@"
exit $?
