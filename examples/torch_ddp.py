#!/usr/bin/env python3
"""Minimal PyTorch DDP job for Rover (gloo backend, CPU): the torchrun contract with real torch.

Run it under the Rover agent or by hand with torchrun:
  torchrun --nproc-per-node 2 examples/torch_ddp.py --steps 50
It reads RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT through init_process_group("env://"),
trains a tiny linear model on synthetic data (each rank its own slice), resumes from the
checkpoint rank 0 wrote, and prints the same ROVER_START / ROVER_STEP / ROVER_CHECKPOINT /
ROVER_DONE lines as examples/trainer.py, which is what the Rover agent parses.
"""
import argparse, datetime, os, signal, sys, time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP


def parse_args():
    default_dir = os.environ.get("ROVER_CHECKPOINT_DIR") or os.path.join(
        ".rover", "checkpoints", os.environ.get("ROVER_JOB") or "local")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--step-time", type=float, default=0.1, help="seconds to sleep per step")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--samples", type=int, default=4096)
    p.add_argument("--checkpoint-dir", default=default_dir)
    p.add_argument("--checkpoint-every", type=int, default=5)
    p.add_argument("--timeout", type=float, default=1800, help="collective timeout in seconds")
    return p.parse_args()


def make_slice(seed, samples, rank, world):
    """Every rank regenerates the same data set from the seed and keeps its own slice."""
    g = torch.Generator().manual_seed(seed)
    true_w, true_b = torch.randn(4, 1, generator=g), torch.randn(1, generator=g)
    xs = torch.randn(samples, 4, generator=g)
    ys = xs @ true_w + true_b + 0.1 * torch.randn(samples, 1, generator=g)
    return xs[rank::world], ys[rank::world]


def save_checkpoint(path, obj):
    """Write a temp file, fsync, rename: a crash never leaves half a checkpoint behind."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print(f"ROVER_START rank={os.environ.get('RANK', '0')} world_size={os.environ.get('WORLD_SIZE', '1')} "
          f"local_rank={os.environ.get('LOCAL_RANK', '0')} "
          f"restart={os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", flush=True)
    dist.init_process_group(backend="gloo", init_method="env://", timeout=datetime.timedelta(seconds=args.timeout))
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(args.seed)  # the same initial weights everywhere (DDP also broadcasts rank 0's)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)

    # Rank 0 reads the checkpoint and hands it to everyone, so ranks need no shared disk and agree.
    ckpt_path = os.path.join(args.checkpoint_dir, "checkpoint.pt")
    holder = [None]
    if rank == 0:
        os.makedirs(args.checkpoint_dir, exist_ok=True)
        if os.path.exists(ckpt_path):
            holder[0] = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    dist.broadcast_object_list(holder, src=0)
    start = 0
    if holder[0] is not None:
        model.load_state_dict(holder[0]["model"])
        optimizer.load_state_dict(holder[0]["optimizer"])
        start = int(holder[0]["step"])
        print(f"ROVER_RESUME step={start}", flush=True)

    ddp = DDP(model)
    xs, ys = make_slice(args.seed, args.samples, rank, world)
    for step in range(start + 1, args.steps + 1):
        optimizer.zero_grad()
        loss = F.mse_loss(ddp(xs), ys)
        loss.backward()  # DDP averages the gradients across all ranks here
        optimizer.step()
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        print(f"ROVER_STEP {step} loss={mean_loss.item() / world:.6g}", flush=True)
        if rank == 0 and (step % args.checkpoint_every == 0 or step == args.steps):
            save_checkpoint(ckpt_path, {"step": step, "model": model.state_dict(),
                                        "optimizer": optimizer.state_dict()})
            print(f"ROVER_CHECKPOINT step={step} path={ckpt_path}", flush=True)
        time.sleep(args.step_time)

    w = [round(v, 6) for v in model.weight.detach().flatten().tolist()]
    print(f"ROVER_DONE rank={rank} steps={args.steps} w={w} b={model.bias.item():.6f}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
