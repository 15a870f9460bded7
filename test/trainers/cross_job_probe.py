#!/usr/bin/env python3
"""A hostile test trainer: from inside job A it tries to act on job B by every side door. Stdlib only.

Usage:
  cross_job_probe.py idle STOP_FILE          trains (prints ROVER_STEP) until STOP_FILE exists
  cross_job_probe.py attack TARGET.json OUT.json
TARGET.json: {"job": B, "check_host": h, "check_port": p, "store_file": sqlite path or null}.
OUT.json: {"control": {...}, "attempts": [{"path": what, "outcome": str, "refused": bool}, ...]}.
An attempt is refused when the API answers 401/403/404, the check server never acknowledges, or
the needed secret is simply not there.
"""
import json, os, secrets, socket, sqlite3, sys, time, urllib.error, urllib.request

API = os.environ.get("ROVER_API_URL", "").split(",")[0]
TOKEN = os.environ.get("ROVER_TOKEN", "")


def call(method, route, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(API + route, data=data, method=method)
    req.add_header("authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status
    except urllib.error.HTTPError as e:
        return e.code


def api_attempt(what, method, route, token, body=None):
    status = call(method, route, token, body)
    return {"path": what, "outcome": f"HTTP {status}", "refused": status in (401, 403, 404)}


def check_server_attempt(host, port):
    """Pairs with B's node-check server without its secret: a guessed one, then none at all."""
    outcomes = []
    for label, head in (("guessed secret", secrets.token_hex(16).encode()), ("no secret", b"")):
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                s.sendall(head + b"\x01" * 4096)
                s.shutdown(socket.SHUT_WR)
                s.settimeout(5)
                acked = s.recv(1) == b"k"
        except OSError:
            acked = False
        outcomes.append({"path": f"node-check server of B ({label})", "outcome": "acknowledged" if acked else "dropped", "refused": not acked})
    return outcomes


def attack(target_file, out_file):
    t = json.load(open(target_file))
    b = t["job"]
    attempts = []
    # Store and Temporal: nothing to connect with.
    for name in ("ROVER_STORE_URL", "ROVER_TEMPORAL_ADDRESS", "ROVER_OPERATOR_TOKEN"):
        attempts.append({"path": f"env {name}", "outcome": "present" if name in os.environ else "absent", "refused": name not in os.environ})
    # The store's contents (the local backend's SQLite file is readable by the same user): B's
    # token digest, presented as a token in both its forms.
    if t.get("store_file"):
        db = sqlite3.connect(f"file:{t['store_file']}?mode=ro", uri=True, timeout=10)
        (digest,) = db.execute("SELECT token_digest FROM jobs WHERE id = ?", (b,)).fetchone()
        db.close()
        for form in (digest, digest.split(":", 1)[-1]):
            attempts.append(api_attempt("store: B's token digest as a token", "GET", f"/v1/jobs/{b}/shards", form))
    # The API with A's own token, on every route that names a job.
    ref = {"node": 0, "incarnation": 0}
    for method, route, body in (
        ("GET", f"/v1/jobs/{b}/shards", None),
        ("POST", f"/v1/jobs/{b}/shards/lease", {**ref, "rank": 0}),
        ("POST", f"/v1/jobs/{b}/shards/done", {**ref, "rank": 0, "shards": []}),
        ("POST", f"/v1/jobs/{b}/shards/giveback", {**ref, "rank": 0}),
        ("POST", f"/v1/jobs/{b}/trainers/step", {**ref, "rank": 0, "step": 1}),
        ("POST", f"/v1/jobs/{b}/checkpoints", {**ref, "rank": 0, "step": 1, "path": "/tmp/x"}),
        ("GET", f"/v1/jobs/{b}/checkpoints/latest", None),
        ("POST", f"/v1/jobs/{b}/nodes/register", {**ref, "pid": 1, "host": "127.0.0.1"}),
        ("POST", f"/v1/jobs/{b}/rendezvous/join", {**ref, "host": "127.0.0.1", "freePort": 1}),
        ("GET", f"/v1/jobs/{b}/rendezvous/1?node=0&incarnation=0", None),
        ("POST", f"/v1/jobs/{b}/nodes/heartbeat", {**ref, "round": 1, "step": None, "processes": []}),
        ("POST", f"/v1/jobs/{b}/nodes/events", {**ref, "kind": "process_failed", "data": {}}),
        ("POST", f"/v1/jobs/{b}/nodes/check", {**ref, "host": "127.0.0.1", "port": 1, "secret": "0" * 32}),
        ("POST", f"/v1/jobs/{b}/nodes/report", {**ref, "status": "succeeded"}),
    ):
        attempts.append(api_attempt(f"API {method} {route.split('?')[0]} with A's token", method, route, TOKEN, body))
    # The Brain: B's configuration, an optimization for B, and the operator's listing.
    attempts.append(api_attempt("Brain: B's config", "GET", f"/brain/v1/config?job={b}", TOKEN))
    attempts.append(api_attempt("Brain: optimize B", "POST", "/brain/v1/optimize", TOKEN, {"job": b, "stage": "running"}))
    attempts.append(api_attempt("Brain: every config (operator only)", "GET", "/brain/v1/configs", TOKEN))
    attempts.extend(check_server_attempt(t["check_host"], t["check_port"]))
    # The control: A's token does open A, so the refusals above are about B, not a broken token.
    control = {"own shards": call("GET", f"/v1/jobs/{os.environ['ROVER_JOB']}/shards", TOKEN),
               "own config": call("GET", f"/brain/v1/config?job={os.environ['ROVER_JOB']}", TOKEN)}
    tmp = f"{out_file}.tmp"
    with open(tmp, "w") as f:
        json.dump({"control": control, "attempts": attempts}, f)
    os.replace(tmp, out_file)
    print("ROVER_STEP 1", flush=True)


def idle(stop_file):
    step = 0
    while not os.path.exists(stop_file):
        step += 1
        print(f"ROVER_STEP {step}", flush=True)
        time.sleep(0.2)


if __name__ == "__main__":
    if sys.argv[1] == "idle":
        idle(sys.argv[2])
    else:
        attack(sys.argv[2], sys.argv[3])
