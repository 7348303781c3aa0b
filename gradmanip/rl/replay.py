"""The replay buffer of the off-policy base: TorchRL's ``TensorDictReplayBuffer`` on a
``LazyTensorStorage`` (preallocated at the first transition), sampling uniformly.

``sampler="random"`` draws with replacement (the SAC reference); ``"without_replacement"`` draws
every stored transition once before repeating. Both use torch's global RNG, which the
off-policy trainer checkpoints, so a resumed run samples the same batches.

:func:`buffer_state` gives the buffer's state for a checkpoint without copying its storage: the
filled rows are NumPy-backed views of the storage's own memory, so ``torch.save`` streams them
to the file (no second copy in memory) and a partly filled buffer writes only its transitions.
:func:`load_buffer_state` restores it at full capacity.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
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


def _map_rows(tree: Mapping[str, Any], fn) -> OrderedDict[str, Any]:
    """``fn`` on every tensor with a batch dimension of a nested state dict (its metadata, such
    as the TensorDict's batch size, kept)."""
    out = OrderedDict(
        (
            key,
            _map_rows(value, fn)
            if isinstance(value, Mapping)
            else fn(value)
            if isinstance(value, torch.Tensor) and value.ndim > 0
            else value,
        )
        for key, value in tree.items()
    )
    if hasattr(tree, "_metadata"):
        out._metadata = tree._metadata
    return out


def buffer_state(buffer: TensorDictReplayBuffer) -> dict[str, Any]:
    """``buffer.state_dict()`` with the storage cut to its filled rows, without a copy."""
    state = buffer.state_dict()
    storage = dict(state["_storage"])
    rows = int(storage["_len"])
    if isinstance(storage.get("_storage"), Mapping):
        storage["_storage"] = _map_rows(
            storage["_storage"], lambda t: torch.from_numpy(t.numpy()[:rows])
        )
    return {**state, "_storage": storage}


def load_buffer_state(buffer: TensorDictReplayBuffer, state: Mapping[str, Any]) -> None:
    """Restore a :func:`buffer_state` into ``buffer`` (same capacity), storage at full size."""
    storage = dict(state["_storage"])
    capacity = buffer.storage.max_size
    if isinstance(storage.get("_storage"), Mapping):

        def full(rows: torch.Tensor) -> torch.Tensor:
            if rows.shape[0] == capacity:
                return rows
            out = torch.zeros((capacity, *rows.shape[1:]), dtype=rows.dtype)
            out[: rows.shape[0]] = rows
            return out

        storage["_storage"] = _map_rows(storage["_storage"], full)
    buffer.load_state_dict({**state, "_storage": storage})
