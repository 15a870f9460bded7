#!/usr/bin/env python3
"""Rover's example trainer: linear regression with a real gradient all-reduce over TCP.

Speaks the torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT,
TORCHELASTIC_RUN_ID, TORCHELASTIC_RESTART_COUNT). Every step each rank sends its gradient sums to
rank 0, which adds them up and sends the totals back, so all ranks apply the same update.
Lines on stdout for the Rover agent:
  ROVER_START rank=<r> world_size=<w> local_rank=<lr> restart=<n>
  ROVER_RESUME step=<n>                      (when a checkpoint was loaded)
  ROVER_STEP <step> loss=<loss> compute=<s>   (compute: this rank's own time of the step, without
                                             waiting on peers: Rover's straggler detection)
  ROVER_CHECKPOINT_BEGIN step=<step>         (rank 0, before a save: no hang is suspected during it)
  ROVER_CHECKPOINT step=<step> path=<file>   (rank 0)
  ROVER_DONE rank=<r> steps=<n> w=<w> b=<b>
Started by a Rover agent (ROVER_API_URL, ROVER_ROUND set), it runs in Rover mode
(examples/rover_training.py): checkpoints and dataset shards go through clients/python.
Fault flags (--crash-at-step, --exit-at-step, --hang-at-step, --fail-always) act on --crash-rank.
Python 3.11 standard library only; runs alone as rank 0 of 1 when no environment is set.
"""
import argparse, collections, faulthandler, json, os, random, select, signal, socket, struct, sys, time

HEADER = struct.Struct("!I")  # frame = 4-byte big-endian length + UTF-8 JSON
MAX_FRAME = 1 << 20


class RunAborted(Exception):
    """The run cannot go on; the message says why. Exits 1 without a traceback."""


class PeerLost(Exception):
    pass


class Conn:
    """One framed TCP connection; buffers partial frames so rank 0 can read many peers with select."""

    def __init__(self, sock, name):
        self.sock, self.name = sock, name
        self.buf, self.pending = b"", collections.deque()

    def send(self, msg):
        data = json.dumps(msg).encode()
        self.sock.sendall(HEADER.pack(len(data)) + data)

    def fill(self):
        try:
            chunk = self.sock.recv(65536)
        except OSError as e:  # reset, timeout, unreachable: the peer is gone either way
            raise PeerLost(str(e)) from e
        if not chunk:
            raise PeerLost("connection closed")
        self.buf += chunk
        while len(self.buf) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buf)
            if size > MAX_FRAME:
                raise PeerLost(f"frame of {size} bytes from {self.name} is larger than {MAX_FRAME}")
            if len(self.buf) < HEADER.size + size:
                break
            self.pending.append(json.loads(self.buf[HEADER.size:HEADER.size + size]))
            self.buf = self.buf[HEADER.size + size:]

    def recv(self, deadline):
        while not self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerLost(f"nothing from {self.name} in time")
            self.sock.settimeout(remaining)
            self.fill()
        return self.pending.popleft()


def env_int(name, default):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        sys.exit(f"trainer: {name}={raw!r} is not an integer; set it to a whole number")


def read_env():
    e = argparse.Namespace(
        rank=env_int("RANK", 0), world=env_int("WORLD_SIZE", 1), local_rank=env_int("LOCAL_RANK", 0),
        restart=env_int("TORCHELASTIC_RESTART_COUNT", 0), port=env_int("MASTER_PORT", 29500),
        addr=os.environ.get("MASTER_ADDR") or "127.0.0.1",
        run_id=os.environ.get("TORCHELASTIC_RUN_ID") or "local")
    if e.world < 1:
        sys.exit(f"trainer: WORLD_SIZE={e.world} must be at least 1")
    if not 0 <= e.rank < e.world:
        sys.exit(f"trainer: RANK={e.rank} is outside 0..{e.world - 1} for WORLD_SIZE={e.world}; "
                 "each process needs a distinct RANK below WORLD_SIZE")
    if not 0 < e.port < 65536:
        sys.exit(f"trainer: MASTER_PORT={e.port} is not a TCP port (1..65535)")
    return e


def hello_problem(hello, env, joined):
    """Why rank 0 must refuse this hello, or None if it fits the run."""
    rank = hello.get("rank")
    if hello.get("type") != "hello":
        return f"expected a hello message, got {hello!r}"
    if hello.get("run_id") != env.run_id:
        return (f"rank {rank} belongs to run {hello.get('run_id')!r} but rank 0 runs {env.run_id!r}; "
                "TORCHELASTIC_RUN_ID must be the same for every process (a stale process may be connecting)")
    if hello.get("world_size") != env.world:
        return (f"rank {rank} was started with WORLD_SIZE={hello.get('world_size')} but rank 0 has "
                f"WORLD_SIZE={env.world}; every process of a run must get the same WORLD_SIZE")
    if not isinstance(rank, int) or not 1 <= rank < env.world:
        return f"a peer announced RANK={rank}, outside 1..{env.world - 1} for WORLD_SIZE={env.world}"
    if rank in joined:
        return f"two processes announced RANK={rank}; every process needs a distinct RANK"
    return None


class Group:
    """The ranks of one run. Rank 0 holds a Conn per peer; a peer holds one Conn to rank 0."""

    def __init__(self, env, timeout):
        self.env, self.timeout, self.peers, self.master = env, timeout, [], None

    def serve(self, connect_timeout, welcome):
        """Rank 0: accept exactly WORLD_SIZE-1 valid peers, then send each the welcome."""
        if self.env.world == 1:
            return welcome
        # MASTER_ADDR only, the address the peers dial (this node's own, or 127.0.0.1 on one
        # machine): never all interfaces, so the port is not offered on networks it is not meant for.
        try:
            family, _, _, _, where = socket.getaddrinfo(self.env.addr, self.env.port, type=socket.SOCK_STREAM)[0]
        except OSError as e:
            raise RunAborted(f"rank 0 cannot resolve MASTER_ADDR={self.env.addr} ({e})") from e
        srv = socket.socket(family, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restarted rank 0 rebinds at once
        try:
            srv.bind(where)
        except OSError as e:
            srv.close()
            raise RunAborted(f"rank 0 cannot listen on MASTER_ADDR={self.env.addr} MASTER_PORT={self.env.port} ({e}); "
                             "is MASTER_ADDR an address of this host, and is no other rank 0 or program using that port?") from e
        srv.listen(self.env.world)
        deadline, joined = time.monotonic() + connect_timeout, {}
        with srv:
            while len(joined) < self.env.world - 1:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missing = sorted(set(range(1, self.env.world)) - set(joined))
                    raise self.abort(f"ranks {missing} did not join within {connect_timeout:g} s "
                                     f"(only {len(joined)} of {self.env.world - 1} peers connected)")
                srv.settimeout(remaining)
                try:
                    sock, addr = srv.accept()
                except socket.timeout:
                    continue
                conn = Conn(sock, f"peer at {addr[0]}:{addr[1]}")
                try:
                    hello = conn.recv(min(deadline, time.monotonic() + 10))
                except (PeerLost, ValueError):
                    sock.close()  # not one of ours (port probe, garbage): keep waiting for real peers
                    continue
                problem = hello_problem(hello, self.env, joined)
                self.peers.append(conn)  # so an abort reaches it too
                if problem:
                    raise self.abort(problem)
                conn.name = f"rank {hello['rank']}"
                joined[hello["rank"]] = conn
        self.peers = [joined[r] for r in range(1, self.env.world)]
        for conn in self.peers:
            conn.send({"type": "welcome", **welcome})
        return welcome

    def join(self, connect_timeout):
        """Peer: connect to rank 0 (retrying until the deadline), say hello, return the welcome."""
        env, deadline = self.env, time.monotonic() + connect_timeout
        while True:
            try:
                sock = socket.create_connection((env.addr, env.port), timeout=5)
                if sock.getsockname() == sock.getpeername():
                    sock.close()  # TCP self-connect on loopback when nobody listens yet
                    raise ConnectionRefusedError("connected to itself")
                break
            except OSError as e:
                if time.monotonic() >= deadline:
                    raise RunAborted(f"could not reach rank 0 at {env.addr}:{env.port} within "
                                     f"{connect_timeout:g} s ({e}); is rank 0 running and are "
                                     "MASTER_ADDR/MASTER_PORT right?") from e
                time.sleep(0.2)
        self.master = Conn(sock, "rank 0")
        self.master.send({"type": "hello", "run_id": env.run_id, "rank": env.rank, "world_size": env.world})
        # Rank 0 may wait a whole connect timeout for the other peers before it welcomes anyone.
        return self.expect("welcome", time.monotonic() + connect_timeout + 10, "rendezvous")

    def expect(self, kind, deadline, when):
        try:
            msg = self.master.recv(deadline)
        except PeerLost as e:
            raise RunAborted(f"lost rank 0 during {when} ({e}); rank 0 or another rank failed, see their logs") from e
        if msg.get("type") == "abort":
            raise RunAborted(f"rank 0 stopped the run: {msg.get('reason')}")
        if msg.get("type") != kind:
            raise RunAborted(f"expected {kind} from rank 0 during {when}, got {msg!r}")
        return msg

    def abort(self, reason):
        """Rank 0: tell every peer why the run stops, and return the error to raise."""
        for conn in self.peers:
            try:
                conn.send({"type": "abort", "reason": reason})
            except OSError:
                pass
        return RunAborted(reason)

    def gather(self, step, data):
        """Every rank's data in rank order on rank 0; None on peers."""
        if self.master:
            try:
                self.master.send({"type": "contrib", "step": step, "data": data})
            except OSError as e:
                raise RunAborted(f"lost rank 0 at step {step} ({e}); rank 0 or another rank failed, see their logs") from e
            return None
        got, deadline = {0: data}, time.monotonic() + self.timeout
        waiting = {i + 1: conn for i, conn in enumerate(self.peers)}
        while waiting:
            for rank, conn in list(waiting.items()):
                if conn.pending:
                    msg = conn.pending.popleft()
                    if msg.get("type") != "contrib" or msg.get("step") != step:
                        raise self.abort(f"rank {rank} sent {msg!r} while rank 0 was at step {step}")
                    got[rank] = msg["data"]
                    del waiting[rank]
            if not waiting:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.abort(f"ranks {sorted(waiting)} sent nothing for step {step} within {self.timeout:g} s")
            ready, _, _ = select.select([c.sock for c in waiting.values()], [], [], max(remaining, 0))
            for rank, conn in list(waiting.items()):
                if conn.sock in ready:
                    try:
                        conn.fill()
                    except PeerLost as e:
                        raise self.abort(f"rank {rank} disconnected at step {step} ({e})") from e
        return [got[r] for r in range(self.env.world)]

    def broadcast(self, step, data):
        """Rank 0's data on every rank."""
        if self.master:
            return self.expect("bcast", time.monotonic() + self.timeout, f"step {step}")["data"]
        for rank, conn in enumerate(self.peers, start=1):
            try:
                conn.send({"type": "bcast", "step": step, "data": data})
            except OSError as e:
                raise self.abort(f"rank {rank} disconnected at step {step} ({e})") from e
        return data

    def all_reduce_sum(self, step, values):
        parts = self.gather(step, values)
        return self.broadcast(step, parts and [sum(col) for col in zip(*parts)])

    def close(self):
        for conn in self.peers + ([self.master] if self.master else []):
            conn.sock.close()


def make_slice(seed, samples, rank, world):
    """This rank's share of a dataset every rank regenerates identically from the seed."""
    rng = random.Random(seed)
    true_w, true_b = rng.uniform(-3, 3), rng.uniform(-3, 3)
    xs = [rng.gauss(0, 1) for _ in range(samples)]
    ys = [true_w * x + true_b + rng.gauss(0, 0.1) for x in xs]
    lo, hi = rank * samples // world, (rank + 1) * samples // world
    return xs[lo:hi], ys[lo:hi]


def local_sums(w, b, xs, ys):
    """Sums (not means), so the all-reduce weighs ranks by their sample count: [dw, db, loss, n]."""
    gw = gb = loss = 0.0
    for x, y in zip(xs, ys):
        err = w * x + b - y
        gw, gb, loss = gw + err * x, gb + err, loss + 0.5 * err * err
    return [gw, gb, loss, len(xs)]


def load_checkpoint(path):
    try:
        with open(path) as f:
            ckpt = json.load(f)
        return {"step": int(ckpt["step"]), "w": float(ckpt["w"]), "b": float(ckpt["b"])}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunAborted(f"checkpoint {path} is unreadable ({e!r}); delete it or pass another --checkpoint-dir") from e


def write_atomically(path, text):
    """Readers see the old file or the new one, never half of it."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def inject_fault(args, rank, step, first_step):
    if rank != args.crash_rank:
        return
    if args.fail_always and step == first_step:
        raise RuntimeError(f"injected failure at step {step} on rank {rank} (--fail-always)")
    if args.alloc_mb and step == args.alloc_at_step and getattr(args, "ballast", None) is None:
        # Held until the process ends; past the node's memory limit this raises MemoryError.
        args.ballast = bytearray(args.alloc_mb * 1024 * 1024)
        print(f"trainer rank {rank}: allocated {args.alloc_mb} MiB at step {step} (--alloc-mb)", file=sys.stderr, flush=True)
    if step not in (args.crash_at_step, args.exit_at_step, args.hang_at_step):
        return
    if args.crash_once:  # the marker outlives this process, so the restarted one trains through
        marker = os.path.join(args.checkpoint_dir, f"fault-injected-rank{rank}-step{step}")
        if os.path.exists(marker):
            return
        os.makedirs(args.checkpoint_dir, exist_ok=True)
        write_atomically(marker, f"{time.time()}\n")
    if step == args.crash_at_step:
        raise RuntimeError(f"injected crash at step {step} on rank {rank} (--crash-at-step)")
    if step == args.exit_at_step:
        print(f"trainer rank {rank}: exiting with code {args.exit_code} at step {step} (--exit-at-step)",
              file=sys.stderr, flush=True)
        sys.exit(args.exit_code)
    print(f"trainer rank {rank}: hanging at step {step} (--hang-at-step)", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)


def parse_args(argv):
    default_dir = os.environ.get("ROVER_CHECKPOINT_DIR") or os.path.join(
        ".rover", "checkpoints", os.environ.get("ROVER_JOB") or "local")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=50, help="train until this step (default 50)")
    p.add_argument("--step-time", type=float, default=0.1, help="seconds to sleep per step (default 0.1)")
    p.add_argument("--lr", type=float, default=0.3, help="SGD learning rate (default 0.3)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the synthetic data set")
    p.add_argument("--samples", type=int, default=1024, help="size of the whole data set (default 1024)")
    p.add_argument("--loss-threshold", type=float, default=0.05, help="final loss must be below this")
    p.add_argument("--checkpoint-dir", default=default_dir,
                   help="default: $ROVER_CHECKPOINT_DIR or .rover/checkpoints/<$ROVER_JOB or local>")
    p.add_argument("--checkpoint-every", type=int, default=5, help="rank 0 saves every K steps (default 5)")
    p.add_argument("--connect-timeout", type=float, default=60, help="seconds to wait for all ranks (default 60)")
    p.add_argument("--collective-timeout", type=float, default=1800,
                   help="seconds a step may wait for the other ranks (default 1800, like torch)")
    p.add_argument("--crash-rank", type=int, default=0, help="rank that injects the faults below (default 0)")
    p.add_argument("--crash-at-step", type=int, help="raise an exception at this step (exit 1, traceback)")
    p.add_argument("--exit-at-step", type=int, help="exit with --exit-code at this step")
    p.add_argument("--exit-code", type=int, default=1, help="exit code for --exit-at-step (default 1)")
    p.add_argument("--hang-at-step", type=int, help="stop making progress at this step, staying alive")
    p.add_argument("--crash-once", action="store_true",
                   help="inject the fault only once per checkpoint dir (a marker file remembers it)")
    p.add_argument("--fail-always", action="store_true", help="crash at the first step of every attempt")
    p.add_argument("--slow-checkpoint-at-step", type=int, help="make rank 0's checkpoint save at this step slow")
    p.add_argument("--slow-checkpoint-time", type=float, default=10, help="seconds the slow save takes (default 10)")
    p.add_argument("--slow-rank", type=int, help="rank whose per-step sleep is --slow-factor times longer (straggler tests)")
    p.add_argument("--slow-factor", type=float, default=1, help="multiplier of --slow-rank's --step-time (default 1)")
    p.add_argument("--alloc-mb", type=int, default=0, help="allocate and hold this many MiB (memory/OOM tests)")
    p.add_argument("--alloc-at-step", type=int, default=1, help="step at which --alloc-mb allocates (default 1)")
    p.add_argument("--record-dir", help="Rover mode with a dataset: each rank appends the shards it trained on here")
    args = p.parse_args(argv)
    if args.steps < 0 or args.checkpoint_every < 1 or args.samples < 1:
        p.error("--steps must be >= 0, --checkpoint-every >= 1 and --samples >= 1")
    return args


def step_sleep(args, rank):
    """The per-step sleep (--step-time; × --slow-factor on --slow-rank); returns the seconds slept."""
    seconds = args.step_time * (args.slow_factor if rank == args.slow_rank else 1)
    time.sleep(seconds)
    return seconds


class RoverHooks:
    """What Rover mode (examples/rover_training.py) borrows from this file."""

    def __init__(self, args, env):
        self.args, self.env, self.sums = args, env, local_sums

    def slice(self, rank, world):
        return make_slice(self.args.seed, self.args.samples, rank, world)

    def sleep(self):
        return step_sleep(self.args, self.env.rank)

    def fault(self, step, first_step):
        inject_fault(self.args, self.env.rank, step, first_step)

    def before_save(self, step):
        if self.env.rank == 0 and step == self.args.slow_checkpoint_at_step:
            print(f"trainer rank 0: slow checkpoint save at step {step} ({self.args.slow_checkpoint_time:g} s)",
                  file=sys.stderr, flush=True)
            time.sleep(self.args.slow_checkpoint_time)  # --slow-checkpoint-at-step: a save slower than hangTimeout


def train(args, env, group, rover=None, client=None):
    """rover/client: Rover mode (checkpoints and data shards through the client), else standalone."""
    ckpt_path = os.path.join(args.checkpoint_dir, "checkpoint.json")
    if env.rank == 0:
        if rover:
            start = rover.resume_point(client)
        else:
            os.makedirs(args.checkpoint_dir, exist_ok=True)
            start = load_checkpoint(ckpt_path) or {"step": 0, "w": 0.0, "b": 0.0}
        group.serve(args.connect_timeout, start)  # the welcome carries the resume point to all ranks
    else:
        start = group.join(args.connect_timeout)
    step, w, b = start["step"], start["w"], start["b"]
    if step > 0:
        print(f"ROVER_RESUME step={step}", flush=True)
    xs, ys = make_slice(args.seed, args.samples, env.rank, env.world)
    first_step = step + 1
    if rover:
        hooks = RoverHooks(args, env)
        args.steps, w, b = rover.train_steps(args, env, group, client, start, hooks, hooks)
        if start.get("sharded"):
            xs, ys = make_slice(args.seed, args.samples, 0, 1)
            xs, ys = xs[env.rank::env.world], ys[env.rank::env.world]
        first_step = args.steps + 1  # the loop below has nothing left to do
    slept = 0.0  # compute of a step: the previous step's sleep + this step's gradient, not the all-reduce wait
    for step in range(first_step, args.steps + 1):
        inject_fault(args, env.rank, step, first_step)
        t0 = time.monotonic()
        sums = local_sums(w, b, xs, ys)
        compute = slept + time.monotonic() - t0
        gw, gb, loss, n = group.all_reduce_sum(step, sums)
        w, b = w - args.lr * gw / n, b - args.lr * gb / n
        print(f"ROVER_STEP {step} loss={loss / n:.6g} compute={compute:.6g}", flush=True)
        if env.rank == 0 and (step % args.checkpoint_every == 0 or step == args.steps):
            print(f"ROVER_CHECKPOINT_BEGIN step={step}", flush=True)  # a slow save is not a hang
            if step == args.slow_checkpoint_at_step:
                print(f"trainer rank 0: slow checkpoint save at step {step} ({args.slow_checkpoint_time:g} s)",
                      file=sys.stderr, flush=True)
                time.sleep(args.slow_checkpoint_time)
            write_atomically(ckpt_path, json.dumps({"step": step, "w": w, "b": b}) + "\n")
            print(f"ROVER_CHECKPOINT step={step} path={ckpt_path}", flush=True)
        slept = step_sleep(args, env.rank)
    # Final check: loss of the trained model over all data, and every rank holds rank 0's weights.
    _, _, loss, n = local_sums(w, b, xs, ys)
    parts = group.gather("final", {"w": w, "b": b, "loss": loss, "n": n})
    verdict = parts and {"w": w, "b": b, "loss": sum(p["loss"] for p in parts) / sum(p["n"] for p in parts),
                         "differ": [r for r, p in enumerate(parts) if (p["w"], p["b"]) != (w, b)]}
    verdict = group.broadcast("final", verdict)
    if verdict["differ"]:
        raise RunAborted(f"ranks {verdict['differ']} hold weights different from rank 0's "
                         f"(w={verdict['w']!r}, b={verdict['b']!r})")
    if not verdict["loss"] < args.loss_threshold:
        raise RunAborted(f"model did not converge: loss {verdict['loss']:.6g} is not below "
                         f"--loss-threshold {args.loss_threshold:g} after {args.steps} steps; raise --steps or --lr")
    print(f"ROVER_DONE rank={env.rank} steps={args.steps} w={w!r} b={b!r}", flush=True)


def main(argv):
    args, env = parse_args(argv), read_env()

    def on_sigterm(signum, frame):
        print(f"trainer rank {env.rank}: got SIGTERM, stopping", file=sys.stderr, flush=True)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    # Rover's agent asks for the stacks of a hung trainer with SIGUSR1 when py-spy is not installed.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    print(f"ROVER_START rank={env.rank} world_size={env.world} local_rank={env.local_rank} "
          f"restart={env.restart}", flush=True)
    group = Group(env, args.collective_timeout)
    rover = client = None
    if os.environ.get("ROVER_API_URL") and os.environ.get("ROVER_ROUND"):  # started by a Rover agent
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import rover_training as rover
        client = rover.load_client_module().Client.from_env()
    try:
        train(args, env, group, rover, client)
    except RunAborted as e:
        print(f"trainer rank {env.rank}: {e}", file=sys.stderr, flush=True)
        return 1
    except Exception as e:
        if client is None or not isinstance(e, type(client)._errors()):
            raise
        if type(e).__name__ == "StaleRound":  # the agent is restarting this group: let it stop us
            print(f"trainer rank {env.rank}: {e}; waiting for the agent to restart the group", file=sys.stderr, flush=True)
            time.sleep(60)
        print(f"trainer rank {env.rank}: rover: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        group.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
