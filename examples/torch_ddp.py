#!/usr/bin/env python3
"""PyTorch DDP (gloo, CPU) with Rover's flash checkpoints and shard-ledger sampler.

Runs unchanged under the Rover agent (examples/torch-ddp.yaml) or under torchrun:
  torchrun --nproc-per-node 2 examples/torch_ddp.py --samples 4096
A small MLP (with dropout, so the RNG state matters) learns a synthetic regression. Every step
each rank trains on the samples rover_torch.ShardSampler gives it (under Rover: shards leased
from the job's ledger; under torchrun: a static split) and reports them done; every
--checkpoint-every steps each rank saves model, optimizer, RNG and sampler state with
rover_torch.Checkpointer (under Rover: into shared memory, persisted by the agent). A restart
resumes from the committed checkpoint and prints where it read it:
  ROVER_RESUME step=<n> source=shm|storage
Lines the agent parses: ROVER_START, ROVER_STEP <n> loss=… compute=… at=<unix time>, ROVER_CHECKPOINT_BEGIN,
ROVER_CHECKPOINT, ROVER_DONE. --final-params makes rank 0 torch.save the final parameters.
"""
import argparse, datetime, os, signal, sys, time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
from rover_torch import Checkpointer, ShardSampler  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=4096, help="data set size (under Rover: spec.dataset.size wins)")
    p.add_argument("--shard-size", type=int, default=32, help="samples per rank per step (torchrun mode)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the data (torchrun mode)")
    p.add_argument("--hidden", type=int, default=32, help="width of the MLP's hidden layer")
    p.add_argument("--step-time", type=float, default=0.05, help="seconds to sleep per step (stands for more compute)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--checkpoint-every", type=int, default=5)
    p.add_argument("--final-params", default="", help="rank 0 writes the final parameters here (torch.save)")
    p.add_argument("--timeout", type=float, default=1800, help="collective timeout in seconds")
    return p.parse_args()


def make_data(seed, samples, features=8):
    """Every rank regenerates the same data set from the seed."""
    g = torch.Generator().manual_seed(seed)
    true_w = torch.randn(features, 1, generator=g)
    xs = torch.randn(samples, features, generator=g)
    ys = torch.sin(xs @ true_w) + 0.1 * torch.randn(samples, 1, generator=g)
    return xs, ys


def allreduce_each_gradient(process_group, bucket):
    """DDP comm hook: every gradient all-reduced on its own, in a fixed order. DDP repacks its
    buckets after the first iteration of every process, and a packed all-reduce rounds each sum
    in an order that depends on the packing: a resumed process would differ from an undisturbed
    one in the last bits. Per gradient, the order depends only on the ranks."""
    group = process_group or dist.group.WORLD
    grads = bucket.gradients()
    for grad in grads:
        dist.all_reduce(grad, group=group)
    buffer = bucket.buffer()
    buffer.div_(dist.get_world_size(group))
    future = torch.futures.Future()
    future.set_result(buffer)
    return future


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print(f"ROVER_START rank={os.environ.get('RANK', '0')} world_size={os.environ.get('WORLD_SIZE', '1')} "
          f"local_rank={os.environ.get('LOCAL_RANK', '0')} "
          f"restart={os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')} pid={os.getpid()}", flush=True)
    dist.init_process_group(backend="gloo", init_method="env://", timeout=datetime.timedelta(seconds=args.timeout))
    rank, world = dist.get_rank(), dist.get_world_size()

    torch.manual_seed(args.seed)  # the same initial weights on every rank
    model = torch.nn.Sequential(torch.nn.Linear(8, args.hidden), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                                torch.nn.Linear(args.hidden, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    torch.manual_seed(args.seed + 1 + rank)  # each rank its own dropout masks
    sampler = ShardSampler(dataset_size=args.samples, shard_size=args.shard_size, epochs=args.epochs)
    xs, ys = make_data(args.seed, args.samples)

    checkpointer = Checkpointer()
    step, state = checkpointer.load()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        sampler.load_state_dict(state["sampler"])
        print(f"ROVER_RESUME step={step} source={checkpointer.source}", flush=True)

    ddp = DDP(model)
    ddp.register_comm_hook(None, allreduce_each_gradient)
    slept = 0.0
    for indices in sampler:
        step += 1
        t0 = time.monotonic()
        x, y = xs[indices], ys[indices]
        # Sum over this rank's samples scaled so that DDP's mean over ranks is the mean over the
        # step's samples: the same update whichever rank trained which shard.
        sq = (ddp(x) - y).pow(2).sum()
        (sq * world / sampler.step_samples).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        compute = slept + time.monotonic() - t0  # includes the gradient all-reduce inside backward
        sampler.done(step)
        total = sq.detach().clone()
        dist.all_reduce(total)
        print(f"ROVER_STEP {step} loss={total.item() / sampler.step_samples:.6g} compute={compute:.6g} "
              f"at={time.time():.3f}", flush=True)
        if step % args.checkpoint_every == 0:
            print(f"ROVER_CHECKPOINT_BEGIN step={step}", flush=True)
            saved = checkpointer.save(step, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                             "rng": torch.get_rng_state(), "sampler": sampler.state_dict()})
            print(f"ROVER_CHECKPOINT step={step} saved={str(saved).lower()}", flush=True)
        time.sleep(args.step_time)
        slept = args.step_time

    if rank == 0 and args.final_params:
        torch.save(model.state_dict(), args.final_params)
    print(f"ROVER_DONE rank={rank} steps={step}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
