"""One flat byte layout for a state dict: tensors as raw bytes, everything else pickled.

    [0:8]   magic b"ROVERCK1"
    [8:16]  header length H (little-endian u64)
    [16:16+H] pickle of {"skeleton": bytes, "tensors": [(dtype, shape, offset, nbytes), ...]}
    [D+offset:D+offset+nbytes] each tensor's bytes, 64-byte aligned; D = 16+H rounded up to 64

The skeleton is the state pickled with each tensor replaced by a reference, so writing a state
into a buffer that already has room is one header write plus one memcpy per tensor (no
serialization of tensor data, no allocation). Loading unpickles: read only checkpoints this job
wrote (their sha256 is checked against the one the API recorded before this runs).
"""
import io, pickle, struct

import torch

MAGIC = b"ROVERCK1"
_ALIGN = 64
_PREFIX = 16


def _align(n):
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


class Plan:
    """Where each tensor of one state goes; `nbytes` is the whole layout's size."""

    def __init__(self, state):
        self.tensors = []
        buf = io.BytesIO()
        pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.persistent_id = self._tensor_id
        pickler.dump(state)
        metas, offset = [], 0
        for t in self.tensors:
            n = t.numel() * t.element_size()
            metas.append((str(t.dtype).split(".", 1)[1], tuple(t.shape), offset, n))
            offset = _align(offset + n)
        self.header = pickle.dumps({"skeleton": buf.getvalue(), "tensors": metas}, protocol=pickle.HIGHEST_PROTOCOL)
        self.data_start = _align(_PREFIX + len(self.header))
        self.metas = metas
        self.nbytes = self.data_start + (metas[-1][2] + metas[-1][3] if metas else 0)

    def _tensor_id(self, obj):
        if not isinstance(obj, torch.Tensor):
            return None
        if obj.layout != torch.strided:
            raise TypeError(f"rover_torch checkpoints hold dense tensors only, got layout {obj.layout}: "
                            "convert it (e.g. .to_dense()) before saving")
        self.tensors.append(obj)
        return len(self.tensors) - 1

    def write(self, view):
        """Writes the layout into `view`, a uint8 tensor of at least `nbytes` bytes (shared memory)."""
        head = MAGIC + struct.pack("<Q", len(self.header)) + self.header
        view[:len(head)].copy_(torch.frombuffer(bytearray(head), dtype=torch.uint8))
        for t, (_, _, offset, n) in zip(self.tensors, self.metas):
            if n:
                offset += self.data_start
                view[offset:offset + n].copy_(t.detach().reshape(-1).view(torch.uint8))

    def to_bytes(self):
        out = bytearray(self.nbytes)
        self.write(torch.frombuffer(out, dtype=torch.uint8) if out else torch.empty(0, dtype=torch.uint8))
        return out


def read(data):
    """The state a Plan wrote into `data` (a bytearray or writable buffer); tensors are copies."""
    if bytes(data[:8]) != MAGIC:
        raise ValueError(f"not a rover_torch checkpoint (starts with {bytes(data[:8])!r}, expected {MAGIC!r})")
    (hlen,) = struct.unpack("<Q", bytes(data[8:16]))
    header = pickle.loads(bytes(data[_PREFIX:_PREFIX + hlen]))
    whole, data_start = torch.frombuffer(data, dtype=torch.uint8), _align(_PREFIX + hlen)
    tensors = []
    for dtype, shape, offset, n in header["tensors"]:
        kind = getattr(torch, dtype)
        raw = whole[data_start + offset:data_start + offset + n]
        tensors.append((raw.view(kind) if n else torch.empty(0, dtype=kind)).reshape(shape).clone())
    unpickler = pickle.Unpickler(io.BytesIO(header["skeleton"]))
    unpickler.persistent_load = lambda pid: tensors[pid]
    return unpickler.load()
