"""A list of parameters as one flat [P] vector, and back.

Natural-gradient code works on flat 1-D tensors: :func:`flat_params` and
:func:`set_flat_params` map between a list of parameters and one vector, :func:`unflatten` gives
per-parameter views of a vector, :class:`ParameterLayout` fixes the order, shapes and offsets.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


class ParameterLayout:
    """Fixed order, shapes and offsets of a list of parameters in a flat [P] vector."""

    def __init__(self, params: Iterable[Tensor]) -> None:
        unique: dict[int, Tensor] = {}
        for param in params:
            if not isinstance(param, Tensor):
                raise TypeError(f"params must be tensors, got {type(param).__name__}")
            unique.setdefault(id(param), param)
        self.params: list[Tensor] = list(unique.values())
        if not self.params:
            raise ValueError("params is empty; pass e.g. policy.parameters()")
        first = self.params[0]
        for param in self.params:
            if param.dtype != first.dtype or param.device != first.device:
                raise ValueError(
                    "all params must share one dtype and device, got "
                    f"{first.dtype}/{first.device} and {param.dtype}/{param.device}"
                )
        self.shapes = [param.shape for param in self.params]
        self.sizes = [param.numel() for param in self.params]
        self.numel = sum(self.sizes)
        self.dtype = first.dtype
        self.device = first.device

    def views(self, flat: Tensor) -> list[Tensor]:
        """Views of ``flat`` [P] shaped like each parameter (no copy)."""
        if flat.shape != (self.numel,):
            raise ValueError(f"flat vector must have shape [{self.numel}], got {tuple(flat.shape)}")
        return [
            chunk.view(shape)
            for chunk, shape in zip(flat.split(self.sizes), self.shapes, strict=True)
        ]

    def __repr__(self) -> str:
        return f"ParameterLayout(num_params={len(self.params)}, numel={self.numel})"


def flat_params(params: Iterable[Tensor]) -> Tensor:
    """Detached copy of the parameters as one flat [P] vector (order of ``params``)."""
    layout = params if isinstance(params, ParameterLayout) else ParameterLayout(params)
    return torch.cat([param.detach().reshape(-1) for param in layout.params])


def set_flat_params(params: Iterable[Tensor], flat: Tensor) -> None:
    """Copy a flat [P] vector into the parameters in place (no autograd tracking)."""
    layout = params if isinstance(params, ParameterLayout) else ParameterLayout(params)
    with torch.no_grad():
        torch._foreach_copy_(layout.params, layout.views(flat.to(layout.dtype)))


def unflatten(flat: Tensor, params: Iterable[Tensor]) -> list[Tensor]:
    """Views of ``flat`` [P] with the shapes of ``params`` (inverse of flattening)."""
    layout = params if isinstance(params, ParameterLayout) else ParameterLayout(params)
    return layout.views(flat)
