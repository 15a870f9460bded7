"""Checkpointer: flash checkpoints of a torch state dict through the Rover agent.

    ckpt = Checkpointer()                 # reads the Rover / torchrun environment
    step, state = ckpt.load()             # (0, None) on a fresh start; ckpt.source says from where
    ...
    ckpt.save(step, {"model": m.state_dict(), "optimizer": opt.state_dict(),
                     "rng": torch.get_rng_state(), "sampler": sampler.state_dict()})

Under a Rover agent with spec.checkpoint.flash, save() copies the state into one shared-memory
buffer per rank (/dev/shm/rover/<job>/<node>/<rank>-buffer, allocated on the first save and
reused by every later one and by a restarted process) and returns; the agent's flash saver
(agent/flashCheckpoint.ts) persists the bytes to ROVER_CHECKPOINT_DIR, hashes them and reports
them to the API, which commits the step once every rank of the world reported it. load() returns
the committed step's state for this rank (rank 0's when this rank did not exist then, e.g. after
a grow) from this node's shared memory when it holds exactly the committed bytes (sha256), else
from storage. Without flash the state is written to storage with fsync and reported; under plain
torchrun (no Rover) it is written to the checkpoint folder and load() takes the newest step every
rank has.
"""
import hashlib, mmap, os, shutil, time

import torch

from . import state as layout
from ._rover import rover_client

_KEEP_LOCAL = 2  # torchrun mode: newest files kept per rank (ranks differ by at most one save)


class Checkpointer:
    """Flash checkpoints of one rank's state dict: save(step, state) returns once the state is in
    this node's shared memory (Rover persists it), load() returns (step, state) of the latest
    committed step, from shared memory when it holds those bytes, else from storage. Under plain
    torchrun, files in the checkpoint folder. `client`: a rover_client.Client (default: from the
    environment)."""

    def __init__(self, client=None):
        self.client = client or rover_client.Client()
        self.env = self.client.env
        #: where load() found the state: "shm", "storage", or None (nothing to load)
        self.source = None
        self._file = self._mm = self._view = None

    # -- save --------------------------------------------------------------------------------
    def save(self, step, state):
        """Saves `state` (nested dicts/lists of tensors and picklable values) as checkpoint `step`.

        Returns True once the bytes are in shared memory (flash) or on disk (otherwise); False,
        without saving, while the agent is still persisting this rank's previous save (the
        buffer is reused, so it is not overwritten under the saver; the next save catches up).
        Raises RoverError when /dev/shm is too small for the state.
        """
        plan = layout.Plan(state)
        if not self.env.managed:
            path = self._local_path(step)
            rover_client.write_durably(path, plan.to_bytes())
            self._prune_local()
            return True
        if not self.env.agent_url:
            self.client.save_checkpoint(step, bytes(plan.to_bytes()))
            return True
        buffer = self.buffer_path()
        if os.path.exists(buffer + ".saving"):
            return False
        self._ensure_capacity(buffer, plan.nbytes)
        plan.write(self._view)
        self.client._call("POST", "/save", {**self.client._ref(), "step": step, "shmPath": buffer,
                                             "path": self.client.checkpoint_path(step), "bytes": plan.nbytes},
                          base=self.env.agent_url)
        return True

    def buffer_path(self, rank=None):
        rank = self.env.rank if rank is None else rank
        return os.path.join(rover_client.SHM_ROOT, self.env.job, str(self.env.node), f"{rank}-buffer")

    def _ensure_capacity(self, buffer, nbytes):
        """Maps this rank's buffer with room for `nbytes`; grows it (never shrinks) when needed."""
        if self._mm is not None and len(self._mm) >= nbytes:
            return
        self._close_buffer()
        os.makedirs(os.path.dirname(buffer), exist_ok=True)
        fd = os.open(buffer, os.O_RDWR | os.O_CREAT, 0o600)
        size = os.fstat(fd).st_size
        if size < nbytes:
            free = shutil.disk_usage(os.path.dirname(buffer)).free
            if nbytes - size > free:
                os.close(fd)
                raise rover_client.RoverError(
                    f"/dev/shm has {free} bytes free, the checkpoint needs {nbytes - size} more; enlarge /dev/shm "
                    "(docker --shm-size, a Memory emptyDir) or turn spec.checkpoint.flash off")
            os.ftruncate(fd, nbytes)
            size = nbytes
        self._file, self._mm = fd, mmap.mmap(fd, size)
        self._view = torch.frombuffer(self._mm, dtype=torch.uint8)

    def _close_buffer(self):
        if self._mm is not None:
            self._view = None  # the tensor holds an export of the mmap: drop it before closing
            self._mm.close()
            os.close(self._file)
            self._file = self._mm = None

    # -- load --------------------------------------------------------------------------------
    def load(self):
        """(step, state) of the committed checkpoint to resume from, or (0, None) when none.

        Raises RoverError when the committed bytes are neither in shared memory nor in storage
        with the recorded sha256."""
        if not self.env.managed:
            return self._load_local()
        started = time.monotonic()
        latest = self.client.latest_checkpoint()
        if latest["step"] == 0:
            self.source = None
            return 0, None
        by_rank = {r["rank"]: r for r in latest["ranks"]}
        entry = by_rank.get(self.env.rank) or by_rank.get(0) or next(iter(by_rank.values()))
        for source, path in (("shm", self.buffer_path(entry["rank"])), ("storage", entry["path"])):
            data = _read_prefix(path, entry["bytes"])
            if data is not None and hashlib.sha256(data).hexdigest() == entry["checksum"]:
                self.source = source
                state = layout.read(data)
                self.client.report_restored(latest["step"], source, time.monotonic() - started)
                return latest["step"], state
        raise rover_client.RoverError(
            f"checkpoint of step {latest['step']} rank {entry['rank']} is missing or corrupt: neither "
            f"{self.buffer_path(entry['rank'])} nor {entry['path']} holds bytes with sha256 {entry['checksum']}")

    # -- torchrun mode -----------------------------------------------------------------------
    def _local_path(self, step, rank=None):
        rank = self.env.rank if rank is None else rank
        return os.path.join(os.path.abspath(self.env.checkpoint_dir), f"ckpt-{step}-rank{rank}.bin")

    def _local_steps(self):
        folder, suffix = os.path.abspath(self.env.checkpoint_dir), f"-rank{self.env.rank}.bin"
        names = os.listdir(folder) if os.path.isdir(folder) else []
        return sorted(int(n[5:-len(suffix)]) for n in names if n.startswith("ckpt-") and n.endswith(suffix))

    def _prune_local(self):
        for step in self._local_steps()[:-_KEEP_LOCAL]:
            os.remove(self._local_path(step))

    def _load_local(self):
        steps = self._local_steps()
        step = steps[-1] if steps else 0
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            agreed = torch.tensor([step])
            dist.all_reduce(agreed, op=dist.ReduceOp.MIN)  # the newest step every rank finished writing
            step = int(agreed.item())
        if step == 0:
            self.source = None
            return 0, None
        with open(self._local_path(step), "rb") as f:
            data = bytearray(f.read())
        self.source = "storage"
        return step, layout.read(data)


def _read_prefix(path, nbytes):
    """The first `nbytes` bytes of a file as a bytearray, or None when it is missing or shorter."""
    try:
        with open(path, "rb") as f:
            data = bytearray(nbytes)
            got = f.readinto(data)
    except OSError:
        return None
    return data if got == nbytes else None
