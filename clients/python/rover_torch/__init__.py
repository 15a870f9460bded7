"""Rover for PyTorch trainers: flash checkpoints and a data sampler on Rover's shard ledger.

    import sys; sys.path.insert(0, "/path/to/clients/python")
    from rover_torch import Checkpointer, ShardSampler

Importing this package needs only the standard library; torch is imported when a class is first
used. Under a Rover agent the classes talk to Rover (ROVER_* environment); under plain `torchrun`
they switch to local equivalents (checkpoints in a folder, a static split of the data), so one
script runs under both.

  * Checkpointer (checkpoint.py): save(step, state) copies a state dict into this node's shared
    memory and returns; the agent persists and reports it. load() returns the committed state.
  * ShardedCheckpointer (sharded.py): the same for FSDP through torch.distributed.checkpoint,
    loadable into another world size.
  * ShardSampler (sampler.py): per step, the sample indices of shards leased from the ledger.
"""

_EXPORTS = {
    "Checkpointer": "checkpoint",
    "ShardedCheckpointer": "sharded",
    "ShardSampler": "sampler",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # PEP 562: the submodule (and torch) is imported on first use, not at `import rover_torch`.
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rover_torch' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
