"""ShardSampler: a batch sampler whose indices come from Rover's shard ledger.

    sampler = ShardSampler(dataset_size=len(ds), shard_size=64)
    for step, indices in enumerate(sampler, start=resume_step + 1):
        train(ds[indices]) ...
        sampler.done(step)        # after the optimizer step that consumed them

Each iteration is one training step: every rank leases `shards_per_rank` shards, the ranks
exchange what they leased, and rank r trains on the r-th slice of the step's shards sorted by
(epoch, shard): which rank's lease request won a race does not change what any rank trains on,
so a run is reproducible. done(step) reports this rank's leases as consumed at `step`; after a
failure the ledger rewinds to the committed checkpoint's step and leases the same shards again,
so every sample goes into the final model exactly once across restarts, shrink and grow. The
ledger is the position: state_dict() matters only without one (plain torchrun, or a Rover job
without spec.dataset), where the sampler walks a static split of range(dataset_size) in shards,
`epochs` times, and resumes from the shards consumed (in any world size).
A step near the end of the data may leave some ranks an empty list; iteration ends when the
ledger (or the static split) is exhausted on every rank.
"""
import time

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from ._rover import rover_client

_POLL_S = 0.2  # nothing leasable while shards are in flight elsewhere: wait this long, then ask again


class ShardSampler(Sampler):
    """A torch Sampler over the job's shard ledger: each iteration step yields this rank's sample
    indices from shards it leased, and done(step) reports them consumed at that step, so every
    sample is trained once across restarts, shrink and grow. Under plain torchrun, a static split
    of range(dataset_size) by rank. Sizes in samples; `shards_per_rank`: shards each rank trains
    per step."""

    def __init__(self, dataset_size=None, shard_size=None, shards_per_rank=1, epochs=1, client=None):
        self.client = client or rover_client.Client()
        # The ledger when Rover runs this job with a spec.dataset; else the static split.
        self.managed = self.client.env.managed and self.client.progress()["total"] > 0
        if not self.managed and not (dataset_size and shard_size):
            raise ValueError("ShardSampler needs dataset_size and shard_size, unless Rover runs the job with a "
                             "spec.dataset (which sets them)")
        self.dataset_size, self.shard_size = dataset_size, shard_size
        self.shards_per_rank, self.epochs = shards_per_rank, epochs
        self._leased = []   # this rank's leases behind the last batch, reported by done()
        self._position = 0  # static split: shards consumed by all ranks together (survives a resize)
        #: samples in the last step across all ranks (for a loss normalised by the global batch)
        self.step_samples = 0

    def _group(self):
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __iter__(self):
        """Yields, per training step, this rank's sample indices (a list of ints); ends when every
        shard of every epoch is done (ledger) or handed out (static split)."""
        return self._ledger_steps() if self.managed else self._static_steps()

    def _ledger_steps(self):
        rank, world = self._group()
        while True:
            shards, finished = self.client.lease(self.shards_per_rank)
            mine = [(s.epoch, s.shard_index, s.start, s.end) for s in shards]
            everyone = [None] * world
            if world > 1:
                dist.all_gather_object(everyone, (mine, finished))
            else:
                everyone = [(mine, finished)]
            step_shards = sorted(s for leased, _ in everyone for s in leased)
            if not step_shards:
                if all(done for _, done in everyone):
                    return
                time.sleep(_POLL_S)
                continue
            self._leased = shards
            self.step_samples = sum(end - start for _, _, start, end in step_shards)
            k = self.shards_per_rank
            yield [i for _, _, start, end in step_shards[rank * k:(rank + 1) * k] for i in range(start, end)]

    def _static_steps(self):
        rank, world = self._group()
        per_epoch = -(-self.dataset_size // self.shard_size)
        per_step = world * self.shards_per_rank
        total = per_epoch * self.epochs
        while self._position < total:
            first = self._position
            ids = range(first, min(first + per_step, total))
            ranges = [((g % per_epoch) * self.shard_size, min((g % per_epoch + 1) * self.shard_size, self.dataset_size)) for g in ids]
            self.step_samples = sum(end - start for start, end in ranges)
            k = self.shards_per_rank
            self._position = ids.stop
            yield [i for start, end in ranges[rank * k:(rank + 1) * k] for i in range(start, end)]

    def done(self, step):
        """Reports the shards behind the last batch as consumed by training step `step`."""
        if self.managed:
            self.client.done(step, self._leased)
            self._leased = []

    def state_dict(self):
        return {"position": self._position}

    def load_state_dict(self, state):
        """Restores the static split's position; with the ledger, the rewound ledger is the position."""
        self._position = int(state["position"])
