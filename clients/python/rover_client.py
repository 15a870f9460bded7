"""Rover trainer client: Python 3.8+ standard library only, one file, importable by path.

    import importlib.util, os
    spec = importlib.util.spec_from_file_location("rover_client", "/path/to/clients/python/rover_client.py")
    rover_client = importlib.util.module_from_spec(spec); spec.loader.exec_module(rover_client)
    client = rover_client.Client.from_env()

What it does for a training process the Rover agent started:
  * reads the torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK, ...) and Rover's (ROVER_*);
  * leases dataset shards, reports them done at a training step, or gives them back;
  * reports step metrics;
  * saves checkpoints (through the agent's flash saver when ROVER_AGENT_URL is set, else
    straight to ROVER_CHECKPOINT_DIR with fsync) and reports them; loads the latest committed
    one (from shared memory when the step there is the committed one, else from storage),
    verifying its sha256.
Errors: RoverError; StaleRound when the job moved to a newer rendezvous round (the agent is
about to restart this process: stop touching the ledger).
"""
import hashlib, json, os, random, shutil, time, urllib.error, urllib.parse, urllib.request

SHM_ROOT = "/dev/shm/rover"


class RoverError(Exception):
    pass


class StaleRound(RoverError):
    pass


class Shard:
    __slots__ = ("epoch", "shard_index", "start", "end", "attempts")

    def __init__(self, epoch, shard_index, start, end, attempts=1):
        self.epoch, self.shard_index, self.start, self.end, self.attempts = epoch, shard_index, start, end, attempts

    def indices(self):
        return range(self.start, self.end)

    def key(self):
        return {"epoch": self.epoch, "shardIndex": self.shard_index}

    def __repr__(self):
        return f"Shard(epoch={self.epoch}, index={self.shard_index}, samples={self.start}..{self.end})"


def _int(env, name, default):
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RoverError(f"{name}={raw!r} is not an integer")


class TrainerEnv:
    """The torchrun variables plus Rover's, read once."""

    def __init__(self, env=None):
        env = os.environ if env is None else env
        self.rank, self.world_size = _int(env, "RANK", 0), _int(env, "WORLD_SIZE", 1)
        self.local_rank, self.local_world_size = _int(env, "LOCAL_RANK", 0), _int(env, "LOCAL_WORLD_SIZE", 1)
        self.group_rank, self.restart_count = _int(env, "GROUP_RANK", 0), _int(env, "TORCHELASTIC_RESTART_COUNT", 0)
        self.master_addr, self.master_port = env.get("MASTER_ADDR", "127.0.0.1"), _int(env, "MASTER_PORT", 29500)
        # One URL, or several API replicas separated by commas: requests move on when one is down.
        self.api_urls = [u.strip().rstrip("/") for u in (env.get("ROVER_API_URL") or "").split(",") if u.strip()]
        self.job, self.token = env.get("ROVER_JOB") or "", env.get("ROVER_TOKEN") or ""
        self.node, self.incarnation = _int(env, "ROVER_NODE", 0), _int(env, "ROVER_INCARNATION", 0)
        self.round = _int(env, "ROVER_ROUND", 0)
        self.resume_step = _int(env, "ROVER_RESUME_STEP", -1)  # -1: not told; ask the API
        self.agent_url = (env.get("ROVER_AGENT_URL") or "").rstrip("/")
        # The job's Brain configuration version when the agent started this process ("" if unknown).
        self.config_version = env.get("ROVER_CONFIG_VERSION") or ""
        self.checkpoint_dir = env.get("ROVER_CHECKPOINT_DIR") or os.path.join(".rover", "checkpoints", self.job or "local")

    @property
    def managed(self):
        """True when started by a Rover agent (the API is reachable with a job token)."""
        return bool(self.api_urls and self.token and self.job and self.round > 0)


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def write_durably(path, data):
    """temp name, fsync, rename, fsync the folder: readers see the old file or the new one."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _retry_after(value, cap=60.0):
    """Seconds a Retry-After header (delta-seconds) asks for; 1 when absent or unreadable."""
    try:
        return min(cap, max(0.0, float(int((value or "").strip()))))
    except ValueError:
        return 1.0


class Client:
    def __init__(self, env=None, timeout=30, retry_for=120):
        self.env = env if isinstance(env, TrainerEnv) else TrainerEnv(env)
        # The API may be restarting or busy: keep retrying unreachable/5xx/429 for this many seconds.
        self.timeout, self.retry_for = timeout, retry_for
        self._latest = None
        # The API replica requests go to; the next one after a connection error.
        self._replica = self.env.node % max(1, len(self.env.api_urls))

    @classmethod
    def from_env(cls, **kw):
        return cls(**kw)

    @staticmethod
    def _errors():
        """The exception classes this client raises (for callers that load it by path)."""
        return (RoverError,)

    # -- transport ---------------------------------------------------------------------------
    def _ref(self):
        e = self.env
        return {"node": e.node, "incarnation": e.incarnation, "rank": e.rank, "round": e.round}

    def _call(self, method, path, body=None, base=None):
        """One request to the API (the replica in use, the next when it cannot be reached) or, with
        `base`, to the agent's flash saver; both take this node's token."""
        if base is None and not self.env.api_urls:
            raise RoverError(f"{method} {path}: ROVER_API_URL is not set (is this process started by a Rover agent?)")
        data = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if data is not None else {}
        headers["authorization"] = f"Bearer {self.env.token}"
        delay, deadline, unreachable = 0.2, time.monotonic() + self.retry_for, 0
        while True:
            retry = time.monotonic() + delay < deadline
            url = f"{base or self.env.api_urls[self._replica]}{path}"
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as res:
                    return json.loads(res.read() or b"null")
            except urllib.error.HTTPError as e:
                payload = e.read().decode(errors="replace")
                try:
                    info = json.loads(payload)
                except ValueError:
                    info = {"message": payload}
                if e.code == 409 and info.get("error") == "stale_round":
                    raise StaleRound(info.get("message", "stale round")) from None
                if e.code == 429 and retry:
                    # The API sheds load: wait what it asks (Retry-After), plus up to as much again.
                    after = _retry_after(e.headers.get("Retry-After"))
                    time.sleep(max(delay, after + random.uniform(0, after)))
                    delay = min(delay * 2, 5)
                    continue
                if e.code >= 500 and retry:
                    time.sleep(delay)
                    delay = min(delay * 2, 5)
                    continue
                raise RoverError(f"{method} {path}: HTTP {e.code}: {info.get('message', payload)}") from None
            except (urllib.error.URLError, OSError) as e:  # API restarting: retry with backoff
                if not retry:
                    raise RoverError(f"{method} {url}: {e}") from None
                if base is None:
                    self._replica = (self._replica + 1) % len(self.env.api_urls)
                    unreachable += 1
                    if unreachable % len(self.env.api_urls):
                        continue  # another replica may answer now; back off once all were tried
                time.sleep(delay)
                delay = min(delay * 2, 5)

    def _jobpath(self, rest):
        return f"/v1/jobs/{self.env.job}/{rest}"

    # -- shards ------------------------------------------------------------------------------
    def lease(self, count=1):
        """Up to `count` shards. Returns (shards, finished): finished when nothing is left anywhere."""
        res = self._call("POST", self._jobpath("shards/lease"), {**self._ref(), "count": count})
        shards = [Shard(s["epoch"], s["shardIndex"], s["startIndex"], s["endIndex"], s["attempts"]) for s in res["shards"]]
        return shards, bool(res["finished"])

    def done(self, step, shards):
        """Reports the shards whose samples went into training `step`; returns how many counted."""
        if not shards:
            return 0
        res = self._call("POST", self._jobpath("shards/done"), {**self._ref(), "step": step, "shards": [s.key() for s in shards]})
        return res["counted"]

    def give_back(self, shards):
        if not shards:
            return 0
        return self._call("POST", self._jobpath("shards/giveback"), {**self._ref(), "shards": [s.key() for s in shards]})["returned"]

    def progress(self):
        return self._call("GET", self._jobpath("shards"))

    def iter_shards(self, batch=1, poll=0.5):
        """Yields leased shards until the dataset is finished; the caller reports each done."""
        while True:
            shards, finished = self.lease(batch)
            if shards:
                yield from shards
            elif finished:
                return
            else:
                time.sleep(poll)

    # -- steps -------------------------------------------------------------------------------
    def report_step(self, step, **metrics):
        self._call("POST", self._jobpath("trainers/step"), {**self._ref(), "step": step, "metrics": metrics})

    # -- configuration -----------------------------------------------------------------------
    def config(self, after=None, wait=0):
        """The job's merged Brain configuration: {"version", "configure", "applied", "origin"}.

        With `after` (a version) and `wait` (seconds, at most 60), waits until the version differs
        or the time is up, then answers with whatever is served.
        """
        query = f"?waitMs={int(wait * 1000)}" + (f"&after={urllib.parse.quote(after)}" if after else "")
        # A long poll must outlast its wait.
        saved, self.timeout = self.timeout, max(self.timeout, wait + 10)
        try:
            return self._call("GET", self._jobpath("config") + query)
        finally:
            self.timeout = saved

    def watch_config(self, wait=30):
        """Yields each new configuration while the job runs, newest first seen.

        Starts from the version this process was started with (ROVER_CONFIG_VERSION): the first
        configuration yielded is one the process does not have yet. Without it, yields the current
        one first. Each call is a long poll of up to `wait` seconds.
        """
        version = self.env.config_version or None
        while True:
            res = self.config(after=version, wait=wait)
            if res["version"] != version:
                version = res["version"]
                yield res

        # -- checkpoints -------------------------------------------------------------------------
    def report_restored(self, step, source, seconds=None):
        """Tells the job this rank resumes from committed `step`, read from `source` ("shm": the
        node's shared memory, or "storage") in `seconds`: a checkpoint_restored event."""
        body = {**self._ref(), "step": step, "source": source}
        if seconds is not None:
            body["seconds"] = round(seconds, 6)
        self._call("POST", self._jobpath("checkpoints/restored"), body)

    def latest_checkpoint(self):
        """{"step": S, "ranks": [{rank, path, bytes, checksum}]} of the committed step this round resumes from."""
        if self._latest is None:
            e = self.env
            q = f"round={e.round}&node={e.node}&incarnation={e.incarnation}&rank={e.rank}"
            self._latest = self._call("GET", self._jobpath(f"checkpoints/latest?{q}"))
        return self._latest

    def resume_step(self):
        return self.latest_checkpoint()["step"]

    def checkpoint_path(self, step, rank=None):
        rank = self.env.rank if rank is None else rank
        return os.path.join(os.path.abspath(self.env.checkpoint_dir), f"ckpt-{step}-rank{rank}.bin")

    def shm_path(self, step, rank=None):
        rank = self.env.rank if rank is None else rank
        return os.path.join(SHM_ROOT, self.env.job or "local", str(self.env.node), f"{rank}-{step}")

    def save_checkpoint(self, step, data):
        """Saves this rank's state of `step` and reports it. With a flash agent, returns once the
        bytes are in shared memory (the agent persists and reports them); else after fsync."""
        path = self.checkpoint_path(step)
        if self.env.agent_url:
            shm = self.shm_path(step)
            os.makedirs(os.path.dirname(shm), exist_ok=True)
            need, free = len(data), shutil.disk_usage(os.path.dirname(shm)).free
            if need > free:
                raise RoverError(f"/dev/shm has {free} bytes free, the checkpoint needs {need}; "
                                 "enlarge /dev/shm (docker --shm-size, a Memory emptyDir) or turn spec.checkpoint.flash off")
            tmp = f"{shm}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, shm)
            # No hashing here: the agent hashes while it copies, off the training path.
            self._call("POST", "/save", {**self._ref(), "step": step, "shmPath": shm, "path": path,
                                         "bytes": len(data)}, base=self.env.agent_url)
            return path
        checksum = sha256_hex(data)
        write_durably(path, data)
        self._call("POST", self._jobpath("checkpoints"), {**self._ref(), "step": step, "path": path,
                                                          "bytes": len(data), "checksum": checksum})
        return path

    def load_checkpoint(self, rank=None):
        """(step, bytes) of the committed checkpoint for `rank` (default: this rank, else rank 0),
        or (0, None) when nothing is committed. Shared memory first, then storage; checksummed;
        where it was found goes to the job's events (report_restored)."""
        started = time.monotonic()
        latest = self.latest_checkpoint()
        if latest["step"] == 0:
            return 0, None
        by_rank = {r["rank"]: r for r in latest["ranks"]}
        want = self.env.rank if rank is None else rank
        entry = by_rank.get(want) or by_rank.get(0) or next(iter(by_rank.values()))
        for source, path in (("shm", self.shm_path(latest["step"], entry["rank"])), ("storage", entry["path"])):
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if sha256_hex(data) == entry["checksum"]:
                self.report_restored(latest["step"], source, time.monotonic() - started)
                return latest["step"], data
        raise RoverError(f"checkpoint of step {latest['step']} rank {entry['rank']} is missing or corrupt "
                         f"(looked in shared memory and {entry['path']})")
