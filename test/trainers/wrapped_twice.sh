#!/bin/bash
# Two wrapper levels in front of the trainer, as a user's `bash run.sh` that calls
# `sh -c "python3 train.py; exit $?"` makes them: bash → sh → python3. Neither shell execs
# (each has a command after it), so all three processes live. Arguments go to the trainer.
trainer="$(dirname "$0")/sigterm_recording_trainer.py"
sh -c 'python3 "$@"; exit $?' sh "$trainer" "$@"
exit $?
