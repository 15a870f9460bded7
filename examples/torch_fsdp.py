#!/usr/bin/env python3
"""PyTorch FSDP (fully_shard, gloo, CPU) with sharded checkpoints that survive a resize.

Runs unchanged under the Rover agent or under torchrun:
  torchrun --nproc-per-node 2 examples/torch_fsdp.py --samples 4096
The MLP's parameters and Adam state are sharded across the ranks (FSDP2's fully_shard). Every
--checkpoint-every steps the ranks save their shards with rover_torch.ShardedCheckpointer
(torch.distributed.checkpoint); a restart, possibly with another world size after Rover shrank or
grew the job, loads the committed step resharded to the new world. Data comes from
rover_torch.ShardSampler (under Rover: the shard ledger, exactly once across resizes).
Rank 0 prints a fingerprint of the full parameters with every checkpoint and resume, so the
state loaded into a new world size can be compared with the state saved in the old one:
  ROVER_CHECKPOINT step=<n> params=<fingerprint>
  ROVER_RESUME step=<n> source=storage world=<w> params=<fingerprint>
"""
import argparse, datetime, os, signal, sys, time

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.fsdp import fully_shard

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
from rover_torch import ShardedCheckpointer, ShardSampler  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=4096, help="data set size (under Rover: spec.dataset.size wins)")
    p.add_argument("--shard-size", type=int, default=32, help="samples per rank per step (torchrun mode)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the data (torchrun mode)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--step-time", type=float, default=0.05, help="seconds to sleep per step (stands for more compute)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--checkpoint-every", type=int, default=5)
    p.add_argument("--timeout", type=float, default=1800, help="collective timeout in seconds")
    return p.parse_args()


def make_data(seed, samples, features=8):
    g = torch.Generator().manual_seed(seed)
    true_w = torch.randn(features, 1, generator=g)
    xs = torch.randn(samples, features, generator=g)
    return xs, torch.sin(xs @ true_w) + 0.1 * torch.randn(samples, 1, generator=g)


def fingerprint(model):
    """sum and sum of squares of the full parameters, in float64 (a collective: all ranks call it)."""
    full = [p.full_tensor().double() for p in model.parameters()]
    return f"{sum(t.sum().item() for t in full):.12e},{sum(t.pow(2).sum().item() for t in full):.12e}"


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print(f"ROVER_START rank={os.environ.get('RANK', '0')} world_size={os.environ.get('WORLD_SIZE', '1')} "
          f"local_rank={os.environ.get('LOCAL_RANK', '0')} "
          f"restart={os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", flush=True)
    dist.init_process_group(backend="gloo", init_method="env://", timeout=datetime.timedelta(seconds=args.timeout))
    rank, world = dist.get_rank(), dist.get_world_size()

    torch.manual_seed(args.seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, args.hidden), torch.nn.ReLU(), torch.nn.Linear(args.hidden, 1))
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer)
    fully_shard(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    sampler = ShardSampler(dataset_size=args.samples, shard_size=args.shard_size, epochs=args.epochs)
    xs, ys = make_data(args.seed, args.samples)

    checkpointer = ShardedCheckpointer()
    # DCP loads into the target's own sharding: materialise the optimizer state first.
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd, "sampler": sampler.state_dict()}
    step = checkpointer.load(state)
    if step:
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
        sampler.load_state_dict(state["sampler"])
        params = fingerprint(model)
        if rank == 0:
            print(f"ROVER_RESUME step={step} source={checkpointer.source} world={world} params={params}", flush=True)

    slept = 0.0
    for indices in sampler:
        step += 1
        t0 = time.monotonic()
        sq = (model(xs[indices]) - ys[indices]).pow(2).sum()
        (sq * world / sampler.step_samples).backward()  # FSDP averages gradients over ranks
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        compute = slept + time.monotonic() - t0
        sampler.done(step)
        total = sq.detach().clone()
        dist.all_reduce(total)
        print(f"ROVER_STEP {step} loss={total.item() / sampler.step_samples:.6g} compute={compute:.6g}", flush=True)
        if step % args.checkpoint_every == 0:
            print(f"ROVER_CHECKPOINT_BEGIN step={step}", flush=True)
            model_sd, optim_sd = get_state_dict(model, optimizer)
            checkpointer.save(step, {"model": model_sd, "optim": optim_sd, "sampler": sampler.state_dict()})
            params = fingerprint(model)
            print(f"ROVER_CHECKPOINT step={step} params={params}", flush=True)
        time.sleep(args.step_time)
        slept = args.step_time

    print(f"ROVER_DONE rank={rank} steps={step}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
