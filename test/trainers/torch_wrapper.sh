#!/bin/bash
# A user's launch script around a torch trainer, as clusters often have: it sets up the
# environment, runs the trainer behind itself (bash → python, bash stays the agent's child) and
# passes its exit status on. $1: the python to run; the other arguments are the trainer's.
set -u
python="$1"
shift
export PYTHONUNBUFFERED=1
echo "wrapper: rank ${RANK} of ${WORLD_SIZE} starting $*"
"$python" "$@"
status=$?
echo "wrapper: rank ${RANK} trainer exited with status ${status}"
exit "$status"
