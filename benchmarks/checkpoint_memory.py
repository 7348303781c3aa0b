"""Peak memory of writing the checkpoint of a full 1M-transition replay buffer (Hopper sizes).

    python benchmarks/checkpoint_memory.py [capacity]

Fills an off-policy trainer's buffer (11 observations, 3 actions, one cost) with random
transitions, then writes a checkpoint of the trainer's state the way a run does
(:func:`gradmanip.experiment.checkpoint.save_checkpoint`) and prints the process's resident
memory before the write and its peak (high-water mark) after it: the storage tensors are
streamed to the file, not copied.
"""

from __future__ import annotations

import sys
import tempfile
import time

import torch
from tensordict import TensorDict

from gradmanip.experiment.checkpoint import save_checkpoint
from gradmanip.rl.replay import buffer_state, make_replay_buffer


def rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def main(capacity: int = 1_000_000) -> None:
    buffer = make_replay_buffer(capacity, 256)
    chunk = 100_000
    for start in range(0, capacity, chunk):
        n = min(chunk, capacity - start)
        buffer.extend(
            TensorDict(
                {
                    "observation": torch.randn(n, 11),
                    "action": torch.rand(n, 3),
                    "next": {
                        "observation": torch.randn(n, 11),
                        "reward": torch.randn(n, 1),
                        "cost": torch.rand(n, 1),
                        "done": torch.zeros(n, 1, dtype=torch.bool),
                        "terminated": torch.zeros(n, 1, dtype=torch.bool),
                        "truncated": torch.zeros(n, 1, dtype=torch.bool),
                    },
                },
                [n],
            )
        )
    storage_mb = (
        sum(t.numel() * t.element_size() for t in buffer.storage._storage.values(True, True))
        / 2**20
    )
    # reset the high-water mark to the current resident size (Linux), so the peak is the write's
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = rss_mb("VmRSS")
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        save_checkpoint(directory, {"replay_buffer": buffer_state(buffer)})
        seconds = time.perf_counter() - start
    peak = rss_mb("VmHWM")
    print(
        f"transitions {len(buffer)}  storage {storage_mb:.0f} MB  resident before write "
        f"{before:.0f} MB  peak during write {peak:.0f} MB  (+{peak - before:.0f} MB)  "
        f"write {seconds:.2f} s"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
