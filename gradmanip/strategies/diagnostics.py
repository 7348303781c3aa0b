"""Diagnostics of a strategy: plain Python values on the fast path, tensors at the boundaries.

:meth:`~gradmanip.strategies.Strategy.coefficients` returns its diagnostics as Python values
(``mode`` 0/1/2, ``cosine`` [K] floats, ``conflict`` [K] bools, ...): building a tensor costs
more than the whole coefficient computation, and most consumers turn diagnostics into floats for
logging anyway. :func:`as_tensors` gives the tensor form that ``aggregate`` and the TensorDict
interface return: bool -> ``torch.bool``, int -> ``torch.int64``, float -> ``torch.float64``;
a list of K values becomes a [K] tensor, a single value a 0-d tensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

Value = bool | int | float | Sequence[bool] | Sequence[int] | Sequence[float]


def as_tensor(value: Value | Tensor, device: torch.device | None = None) -> Tensor:
    """One diagnostic as a tensor (tensors pass through unchanged)."""
    if isinstance(value, Tensor):
        return value
    first = value[0] if isinstance(value, Sequence) and len(value) else value
    if isinstance(first, bool):
        dtype = torch.bool
    elif isinstance(first, int):
        dtype = torch.int64
    else:
        dtype = torch.float64
    return torch.tensor(value, dtype=dtype, device=device)


def as_tensors(
    values: Mapping[str, Value | Tensor], device: torch.device | None = None
) -> dict[str, Tensor]:
    """Every diagnostic as a tensor on ``device`` (see the module docstring for dtypes)."""
    return {name: as_tensor(value, device) for name, value in values.items()}
