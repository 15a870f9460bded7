"""ShardedCheckpointer: FSDP (DTensor) state through torch.distributed.checkpoint (DCP).

    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
    ckpt = ShardedCheckpointer()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    step = ckpt.load(state)               # in place; 0 when nothing is committed
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    ...
    ckpt.save(step, {"model": ..., "optim": ...})   # a collective: every rank calls it

save() is DCP's collective save into <checkpoint dir>/dcp-<step>/: each rank writes its own
shards (__<rank>_0.distcp; rank 0 also the .metadata), then, under Rover, reports its file with
its sha256; the API commits the step once every rank of the world reported. Sharded state goes
straight to storage (no shared-memory stage): every rank needs every other rank's shards after a
resize anyway. load() reads the committed step into `state`'s own sharding, so a checkpoint
written by 4 ranks loads into 2 or 8 (DCP reshards); the ranks first check the sha256 of every
rank's file the API recorded, each rank a share of them. Under plain torchrun, rank 0 writes a
`latest` file after every rank finished, and load() reads the step it names.
"""
import hashlib, os, time

import torch.distributed as dist
import torch.distributed.checkpoint as dcp

from ._rover import rover_client


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(8 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ShardedCheckpointer:
    """Checkpoints of FSDP (sharded) state through torch.distributed.checkpoint: each rank saves
    its own shards of step N under <checkpoint dir>/dcp-N/, and the step commits when every rank
    reported; load(state) fills `state` in place for the current world size, which may differ from
    the world that saved it."""

    def __init__(self, client=None):
        self.client = client or rover_client.Client()
        self.env = self.client.env
        #: "storage" after a load that found a checkpoint, else None
        self.source = None

    def folder(self, step):
        return os.path.join(os.path.abspath(self.env.checkpoint_dir), f"dcp-{step}")

    def save(self, step, state):
        """Saves this rank's shards of `state` as step `step` (collective); returns the folder."""
        folder = self.folder(step)
        dcp.save(state, checkpoint_id=folder)
        rank = dist.get_rank()
        if self.env.managed:
            path = os.path.join(folder, f"__{rank}_0.distcp")
            self.client._call("POST", self.client._jobpath("checkpoints"),
                              {**self.client._ref(), "step": step, "path": path,
                               "bytes": os.path.getsize(path), "checksum": _sha256_file(path)})
        else:
            dist.barrier()  # every rank's shards are on disk before `latest` names the step
            if rank == 0:
                rover_client.write_durably(self._latest_path(), f"{step}\n".encode())
        return folder

    def load(self, state):
        """Loads the committed step into `state` in place (its tensors' sharding decides what each
        rank reads) and returns the step, or 0 when there is none. Raises RoverError when a
        rank's file is missing or its sha256 is not the recorded one."""
        if not self.env.managed:
            try:
                with open(self._latest_path()) as f:
                    step = int(f.read())
            except FileNotFoundError:
                step = 0
            if step == 0:
                return 0
            folder = self.folder(step)
        else:
            started = time.monotonic()
            latest = self.client.latest_checkpoint()
            step = latest["step"]
            if step == 0:
                return 0
            self._verify(latest)
            folder = os.path.dirname(latest["ranks"][0]["path"])
        dcp.load(state, checkpoint_id=folder)
        self.source = "storage"
        if self.env.managed:
            self.client.report_restored(step, "storage", time.monotonic() - started)
        return step

    def _verify(self, latest):
        rank, world = dist.get_rank(), dist.get_world_size()
        bad = ""
        for entry in latest["ranks"][rank::world]:
            try:
                actual = _sha256_file(entry["path"])
            except OSError as e:
                actual = f"unreadable ({e})"
            if actual != entry["checksum"]:
                bad = f"{entry['path']}: sha256 {actual}, recorded {entry['checksum']}"
                break
        verdicts = [None] * world
        dist.all_gather_object(verdicts, bad)
        problems = [v for v in verdicts if v]
        if problems:
            raise rover_client.RoverError(f"sharded checkpoint of step {latest['step']} is corrupt: " + "; ".join(problems))

    def _latest_path(self):
        return os.path.join(os.path.abspath(self.env.checkpoint_dir), "latest")
