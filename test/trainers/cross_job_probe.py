#!/usr/bin/env python3
"""A hostile test trainer: from inside job A it tries to act on job B by every side door. Stdlib only; it runs the `rover` CLI (node) and the MySQL client as programs.

Usage:
  cross_job_probe.py idle STOP_FILE          trains (prints ROVER_STEP) until STOP_FILE exists
  cross_job_probe.py attack TARGET.json OUT.json
TARGET.json: {"job": B, "check_host": h, "check_port": p,
              "store": {"file": sqlite path} or {"host", "port", "database", "user"} (MySQL, no password),
              "temporal": {"address": the secured frontend, "ca_file": its CA's public certificate,
                           "server_name": the name on its certificate,
                           "stranger_cert", "stranger_key": a client certificate from another CA}}.
OUT.json: {"control": {...}, "attempts": [{"path": what, "outcome": str, "refused": bool}, ...]}.
An attempt is refused when the API answers 401/403/404, the check server never acknowledges, a
command exits non-zero (its outcome is the exit status and the last line of its stderr), or the
needed secret is simply not there.
"""
import json, os, secrets, shutil, socket, sqlite3, subprocess, sys, tempfile, time, urllib.error, urllib.request

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


def run_command(what, argv, env, timeout=60):
    """Starts `argv`; returns a function that waits for it and gives the attempt's outcome."""
    try:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except OSError as e:  # the program itself is missing: not a refusal, and the test says so
        return lambda: {"path": what, "outcome": f"not started: {e}", "refused": False}

    def outcome():
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            return {"path": what, "outcome": f"timed out after {timeout} s", "refused": False}
        lines = [line for line in err.splitlines() if line.strip()]
        return {"path": what, "outcome": f"exit {proc.returncode}: {lines[-1] if lines else ''}", "refused": proc.returncode != 0}

    return outcome


def temporal_attempts(b, t):
    """`rover stop B` with the real CLI at the secured frontend, as someone who found its address and
    knows its CA's public certificate: plain, TLS without a client certificate, and TLS with a
    client certificate from another CA. All three run at once; each must exit non-zero."""
    rover = os.path.join(os.getcwd(), "bin", "rover.js")
    node = shutil.which("node") or "node"
    tls = {"ROVER_TEMPORAL_TLS_CA_FILE": t["ca_file"], "ROVER_TEMPORAL_TLS_SERVER_NAME": t["server_name"]}
    stranger = {**tls, "ROVER_TEMPORAL_TLS_CERT_FILE": t["stranger_cert"], "ROVER_TEMPORAL_TLS_KEY_FILE": t["stranger_key"]}
    with tempfile.TemporaryDirectory(prefix="cross-job-probe-") as home:
        # What the CLI needs, passed explicitly: the trainer's own environment is an allow-list.
        base = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
        base.update(ROVER_HOME=home, ROVER_TEMPORAL_ADDRESS=t["address"])
        waits = [run_command(f"Temporal: rover stop B ({label})", [node, rover, "stop", b], {**base, **extra})
                 for label, extra in (("plain", {}), ("TLS, no client certificate", tls), ("TLS, client certificate of another CA", stranger))]
        return [wait() for wait in waits]


def store_write_attempts(b, s):
    """Writes B's row over TCP with the MySQL client, as the stack's user and as root, both without
    a password (the attacker knows the host, port and names, not the password)."""
    client = shutil.which("mariadb") or shutil.which("mysql") or "mysql"
    update = f"UPDATE jobs SET phase = 'FAILED', reason = 'cross-job probe' WHERE id = '{b}'"
    env = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    waits = [run_command(f"store write: B's row as {user} without a password", [
        client, "--no-defaults", "--protocol=TCP", "-h", s["host"], "-P", str(s["port"]), "-u", user,
        "--connect-timeout=10", s["database"], "-e", update], env, timeout=30) for user in (s["user"], "root")]
    return [wait() for wait in waits]


def attack(target_file, out_file):
    t = json.load(open(target_file))
    b = t["job"]
    attempts = []
    # Store and Temporal: nothing to connect with in the environment.
    for name in ("ROVER_STORE_URL", "ROVER_TEMPORAL_ADDRESS", "ROVER_TEMPORAL_TLS_CERT_FILE", "ROVER_TEMPORAL_TLS_KEY_FILE",
                 "ROVER_TEMPORAL_API_KEY", "ROVER_TEMPORAL_API_KEY_FILE", "ROVER_OPERATOR_TOKEN"):
        attempts.append({"path": f"env {name}", "outcome": "present" if name in os.environ else "absent", "refused": name not in os.environ})
    # Temporal, found anyway: stop B with the CLI.
    attempts.extend(temporal_attempts(b, t["temporal"]))
    store = t["store"]
    if "host" in store:
        # MySQL: write B's row without the password.
        attempts.extend(store_write_attempts(b, store))
    else:
        # SQLite: the file is the user's own on the local backend (readable, and writable); what
        # it holds of B is a token digest, presented here as a token in both its forms.
        db = sqlite3.connect(f"file:{store['file']}?mode=ro", uri=True, timeout=10)
        (digest,) = db.execute("SELECT token_digest FROM jobs WHERE id = ?", (b,)).fetchone()
        db.close()
        for form in (digest, digest.split(":", 1)[-1]):
            attempts.append(api_attempt("store read: B's token digest as a token", "GET", f"/v1/jobs/{b}/shards", form))
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
        ("POST", f"/v1/jobs/{b}/checkpoints/restored", {**ref, "rank": 0, "round": 1, "step": 1, "source": "shm"}),
        ("GET", f"/v1/jobs/{b}/config", None),
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
