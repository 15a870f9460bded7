"""The example trainer's Rover mode (imported by trainer.py when a Rover agent started it).

Checkpoints go through clients/python/rover_client.py: every rank saves its state every
--checkpoint-every steps and reports it; a restarted run loads the latest *committed* step.
With spec.dataset, each step every rank leases one shard, trains on its samples, and reports
it done at that step, so a run resumed from step S replays exactly the shards after S.
--record-dir makes every rank append "round step epoch shard start end" per step it applied.
"""
import importlib.util, json, os, time

_CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python", "rover_client.py")


def load_client_module():
    spec = importlib.util.spec_from_file_location("rover_client", _CLIENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resume_point(client):
    """Rank 0: the committed state to start from, plus whether the job shards a dataset."""
    step, data = client.load_checkpoint(rank=0)
    state = json.loads(data) if data else {"step": 0, "w": 0.0, "b": 0.0}
    state["step"] = step
    state["sharded"] = client.progress()["total"] > 0
    return state


def save(client, step, w, b, rank, hooks=None):
    # Rover's agent suspects no hang between this line and the next ROVER_CHECKPOINT/ROVER_STEP.
    print(f"ROVER_CHECKPOINT_BEGIN step={step}", flush=True)
    if hooks is not None and hasattr(hooks, "before_save"):
        hooks.before_save(step)
    path = client.save_checkpoint(step, (json.dumps({"w": w, "b": b}) + "\n").encode())
    if rank == 0:
        print(f"ROVER_CHECKPOINT step={step} path={path}", flush=True)


class Recorder:
    def __init__(self, folder, rank, round_):
        self.file = None
        if folder:
            os.makedirs(folder, exist_ok=True)
            self.file = open(os.path.join(folder, f"rank{rank}-round{round_}-pid{os.getpid()}.log"), "a")
        self.round = round_

    def write(self, step, shards):
        if not self.file:
            return
        for s in shards:
            self.file.write(f"{self.round} {step} {s.epoch} {s.shard_index} {s.start} {s.end}\n")
        self.file.flush()
        os.fsync(self.file.fileno())


def train_steps(args, env, group, client, start, data, hooks):
    """Runs the training loop from `start`; returns the final (step, w, b)."""
    step, w, b = start["step"], start["w"], start["b"]
    first_step = step + 1
    if not start["sharded"]:
        xs, ys = data.slice(env.rank, env.world)
        slept = 0.0  # compute of a step: the previous step's sleep + this step's gradient, not the all-reduce wait
        for step in range(first_step, args.steps + 1):
            hooks.fault(step, first_step)
            t0 = time.monotonic()
            sums = hooks.sums(w, b, xs, ys)
            compute = slept + time.monotonic() - t0
            gw, gb, loss, n = group.all_reduce_sum(step, sums)
            w, b = w - args.lr * gw / n, b - args.lr * gb / n
            print(f"ROVER_STEP {step} loss={loss / n:.6g} compute={compute:.6g}", flush=True)
            if step % args.checkpoint_every == 0 or step == args.steps:
                save(client, step, w, b, env.rank, hooks)
            slept = hooks.sleep()
        return step, w, b
    xs, ys = data.slice(0, 1)
    recorder = Recorder(args.record_dir, env.rank, client.env.round)
    slept = 0.0
    while True:
        step += 1
        hooks.fault(step, first_step)
        shards, finished = client.lease(1)
        idx = [i % len(xs) for s in shards for i in s.indices()]
        t0 = time.monotonic()
        gw, gb, loss, n = hooks.sums(w, b, [xs[i] for i in idx], [ys[i] for i in idx])
        compute = slept + time.monotonic() - t0
        gw, gb, loss, n, ended = group.all_reduce_sum(step, [gw, gb, loss, n, 1 if finished else 0])
        if n == 0:
            step -= 1
            if ended == env.world:
                return step, w, b
            time.sleep(0.2)  # shards still in flight elsewhere (an expiring lease): wait for them
            continue
        w, b = w - args.lr * gw / n, b - args.lr * gb / n
        recorder.write(step, shards)
        client.done(step, shards)
        print(f"ROVER_STEP {step} loss={loss / n:.6g} compute={compute:.6g}", flush=True)
        if step % args.checkpoint_every == 0:
            save(client, step, w, b, env.rank, hooks)
        slept = hooks.sleep()
