"""A module that is slow to import, as torch is: it sleeps SLOW_IMPORT_SECONDS (default 1), then
appends one JSON line to $SLOW_IMPORT_LOG: {module, pid, at, rank, local_rank, omp} (RANK as the
importing process saw it: a warm standby imports before its round's variables exist). Stdlib only.
"""
import json, os, time

time.sleep(float(os.environ.get("SLOW_IMPORT_SECONDS", "1")))


def record(module):
    log = os.environ.get("SLOW_IMPORT_LOG")
    if log:
        with open(log, "a") as f:  # one short O_APPEND write: processes may share the file
            f.write(json.dumps({"module": module, "pid": os.getpid(), "at": time.time(), "rank": os.environ.get("RANK"),
                                "local_rank": os.environ.get("LOCAL_RANK"), "omp": os.environ.get("OMP_NUM_THREADS")}) + "\n")


record(__name__)
