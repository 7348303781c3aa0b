"""Polyak averaging of target networks in one fused pass over every target tensor.

TorchRL's :class:`~torchrl.objectives.SoftUpdate` moves the targets of a loss module,
``Q' <- (1 - tau) Q' + tau Q``, with one ``lerp_`` per group of parameters (for SAC: the
reward critics, the cost critics), each walking its TensorDict again at every step.
:class:`FlatSoftUpdate` is that updater (same construction, checks and state) whose step is a
single ``torch._foreach_lerp_`` over lists of the target and source tensors gathered once:
the same arithmetic, element for element, at less overhead per gradient step.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchrl.objectives import SoftUpdate


class FlatSoftUpdate(SoftUpdate):
    """:class:`~torchrl.objectives.SoftUpdate` (``tau`` or ``eps``) with a fused step."""

    _pairs: tuple[list[Tensor], list[Tensor]] | None = None

    def _flat_pairs(self) -> tuple[list[Tensor], list[Tensor]]:
        """The target and source tensors, in matching order (gathered on the first step)."""
        if self._pairs is None:
            targets, sources = [], []
            for key, source in self._sources.items(True, True):
                key = key if isinstance(key, tuple) else (key,)
                target = self._targets.get(("target_" + key[0], *key[1:]))
                if target.requires_grad:
                    raise RuntimeError(f"the target parameter {key} is part of a graph")
                targets.append(target)
                sources.append(source)
            self._pairs = (targets, sources)
        return self._pairs

    @torch.no_grad()
    def step(self) -> None:
        if not self.initialized:
            raise RuntimeError(f"{type(self).__name__} must be initialised (init_()) first")
        targets, sources = self._flat_pairs()
        torch._foreach_lerp_(targets, sources, 1 - self.eps)
