"""The trainer side of `npm run bench -- torchCheckpoint` (run by torchCheckpoint.bench.ts with
the torch venv and a Rover environment whose ROVER_AGENT_URL is a real flash saver).

For one state dict of BENCH_TORCH_BYTES (default 1 GiB) of float32 tensors it times, per round,
what blocks the trainer: rover_torch.Checkpointer.save (copy into the reused shared-memory
buffer + notify the agent), torch.save + fsync of the same state to the checkpoint folder, and a
raw memory copy of the same bytes into an already-touched buffer (the physical limit). Round 1
is the first save (the shared-memory buffer is allocated and faulted in); later rounds are the
steady state (best of them). Prints one line:
  torchCheckpoint: blocking_ms=… first_save_ms=… torch_save_ms=… memcpy_ms=… blocking_over_memcpy=…
"""
import os, sys, time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
from rover_torch import Checkpointer  # noqa: E402

TOTAL = int(os.environ.get("BENCH_TORCH_BYTES", str(1 << 30)))
ROUNDS = int(os.environ.get("BENCH_TORCH_ROUNDS", "4"))
TENSORS = 16


def ms(t0):
    return (time.perf_counter() - t0) * 1000


def main():
    per = TOTAL // TENSORS // 4
    state = {"model": {f"layer{i}.weight": torch.randn(per) for i in range(TENSORS)}, "step": 0}
    flat = [t.view(torch.uint8) for t in state["model"].values()]
    dest = torch.empty(sum(t.numel() for t in flat), dtype=torch.uint8)
    dest.fill_(0)  # touched: the memcpy baseline pays no page faults
    ckpt = Checkpointer()
    folder = os.path.abspath(ckpt.env.checkpoint_dir)
    os.makedirs(folder, exist_ok=True)
    rows = []
    for i in range(1, ROUNDS + 1):
        state["step"] = i
        t0 = time.perf_counter()
        saved = ckpt.save(i, state)
        blocking = ms(t0)
        if not saved:
            raise SystemExit(f"round {i}: the saver was still persisting the previous round")
        while os.path.exists(ckpt.buffer_path() + ".saving"):  # not timed: the agent persists in the background
            time.sleep(0.01)
        path = os.path.join(folder, f"torch-save-{i}.pt")
        t0 = time.perf_counter()
        with open(path, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        torch_save = ms(t0)
        os.remove(path)
        t0 = time.perf_counter()
        offset = 0
        for t in flat:
            dest[offset:offset + t.numel()].copy_(t)
            offset += t.numel()
        memcpy = ms(t0)
        rows.append((blocking, torch_save, memcpy))
        print(f"round {i}: save blocks {blocking:.1f} ms, torch.save+fsync {torch_save:.1f} ms, memcpy {memcpy:.1f} ms", flush=True)
    steady = rows[1:] or rows
    blocking, torch_save, memcpy = (min(r[k] for r in steady) for k in range(3))
    print(f"torchCheckpoint: bytes={TOTAL} blocking_ms={blocking:.1f} first_save_ms={rows[0][0]:.1f} "
          f"torch_save_ms={torch_save:.1f} memcpy_ms={memcpy:.1f} blocking_over_memcpy={blocking / memcpy:.2f} "
          f"(steady state: best of rounds 2-{ROUNDS})", flush=True)


if __name__ == "__main__":
    main()
