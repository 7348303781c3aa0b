"""The replay buffer of the off-policy base: TorchRL's ``TensorDictReplayBuffer`` on a
``LazyTensorStorage`` (preallocated at the first transition), sampling uniformly.

``sampler="random"`` draws with replacement (the SAC reference); ``"without_replacement"`` draws
every stored transition once before repeating. Both use torch's global RNG, which the
off-policy trainer checkpoints, so a resumed run samples the same batches.

A checkpoint holds the storage's own tensors (``state_dict`` returns them, not copies), so
``torch.save`` streams them to the file without a second copy in memory.
"""

from __future__ import annotations

from torchrl.data import LazyTensorStorage, TensorDictReplayBuffer
from torchrl.data.replay_buffers import RandomSampler, SamplerWithoutReplacement

SAMPLERS = {"random": RandomSampler, "without_replacement": SamplerWithoutReplacement}


def make_replay_buffer(
    capacity: int, batch_size: int, sampler: str = "random"
) -> TensorDictReplayBuffer:
    """A buffer of ``capacity`` transitions yielding batches of ``batch_size``."""
    for name, value in (("capacity", capacity), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if batch_size > capacity:
        raise ValueError(
            f"batch_size ({batch_size}) is larger than the buffer capacity ({capacity}): "
            "lower batch_size or raise the capacity"
        )
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}")
    sampler_class = SAMPLERS[sampler]
    return TensorDictReplayBuffer(
        storage=LazyTensorStorage(capacity),
        sampler=sampler_class(drop_last=False)
        if sampler_class is SamplerWithoutReplacement
        else sampler_class(),
        batch_size=batch_size,
    )
