#!/bin/sh
# A wrapper that starts a helper in the background and exits at once. A script has no job
# control, so the helper stays in the wrapper's process group after the wrapper is gone.
# Prints "helper <pid>". $1: the wrapper's exit code (default 0); $2 = ignore-sigterm: the
# helper ignores SIGTERM, so only SIGKILL ends it.
if [ "$2" = ignore-sigterm ]; then trap '' TERM; fi
sleep 300 &
echo "helper $!"
exit "${1:-0}"
