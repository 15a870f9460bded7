"""A trainer the way many are written: a TCP all-reduce through rank 0 with no error handling.

Every rank sends a number to rank 0 each step and gets the sum back. When rank 0 dies, the other
ranks die of it with a traceback (ConnectionResetError), as peers of a killed torch rank do.
Usage: peer_reset.py STEPS MARKER_DIR [--kill-rank0-at STEP]  (the kill happens once per MARKER_DIR)
"""
import argparse
import errno
import os
import signal
import socket
import struct
import sys
import time


def recv_exact(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:  # the peer's socket closed: the same as a reset for this protocol
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        data += chunk
    return data


def main():
    p = argparse.ArgumentParser()
    p.add_argument("steps", type=int)
    p.add_argument("marker_dir")
    p.add_argument("--kill-rank0-at", type=int)
    args = p.parse_args()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    print(f"PEER_START rank={rank} round={os.environ.get('ROVER_ROUND')} "
          f"restart_count={os.environ['TORCHELASTIC_RESTART_COUNT']} pid={os.getpid()}", flush=True)
    if rank == 0:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((addr, port))
        server.listen(world)
        peers = [server.accept()[0] for _ in range(world - 1)]
    else:
        deadline = time.time() + 30
        while True:
            try:
                peer = socket.create_connection((addr, port), timeout=2)
                peer.settimeout(None)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
    for step in range(1, args.steps + 1):
        marker = os.path.join(args.marker_dir, "rank0-killed")
        if rank == 0 and step == args.kill_rank0_at and not os.path.exists(marker):
            os.makedirs(args.marker_dir, exist_ok=True)
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        if rank == 0:
            total = 1.0 + sum(struct.unpack("!d", recv_exact(s, 8))[0] for s in peers)
            for s in peers:
                s.sendall(struct.pack("!d", total))
        else:
            peer.sendall(struct.pack("!d", 1.0))
            total = struct.unpack("!d", recv_exact(peer, 8))[0]
        assert total == world, f"all-reduce gave {total}, expected {world}"
        print(f"ROVER_STEP {step}", flush=True)
        time.sleep(0.05)
    print(f"PEER_DONE rank={rank}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
