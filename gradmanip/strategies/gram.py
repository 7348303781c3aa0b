"""Flat-tensor helpers: Gram matrix of the directions and linear combinations of them.

Every built-in strategy returns an update that is a linear combination of its input directions,
``update = c_0 g_r + sum_k c_k g_c[k]``. The coefficients c are computed from the M x M Gram
matrix of the M = 1 + K directions (index 0 = reward, 1..K = constraints). The [P]-sized work is
one Gram product and one combination pass on tensors; the M x M algebra runs on Python
floats (M is tiny, and one ``tolist()`` is far cheaper than dozens of tiny tensor operations).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

Gram = list[list[float]]

# A Gram diagonal outside this range means overflow (inf/nan) or entries so small that their
# squares underflow; the directions are then rescaled by a common factor before the product.
_DIAGONAL_RANGE = DIAGONAL_RANGE = (1e-30, 1e30)


def stacked(g_r: Tensor, g_c: Tensor) -> Tensor | None:
    """[M, P] view of (g_r, g_c) when both are views of ONE storage in which g_c directly follows
    g_r (as in the buffer of :class:`gradmanip.driver.GradientDriver`), else None. Tensors
    that merely sit side by side in memory (two allocations, two numpy views) are never joined:
    a view may only span storage its tensors share."""
    size = g_r.shape[0]
    if (
        g_r.is_contiguous()
        and g_c.is_contiguous()
        and g_c.data_ptr() == g_r.data_ptr() + size * g_r.element_size()
        and g_r.untyped_storage().data_ptr() == g_c.untyped_storage().data_ptr()
    ):
        return g_r.as_strided((1 + g_c.shape[0], size), (size, 1))
    return None


def _gram_tensor(g_r: Tensor, g_c: Tensor) -> Tensor:
    block = stacked(g_r, g_c)
    if block is None:
        block = torch.cat((g_r.unsqueeze(0), g_c))
    return torch.mm(block, block.T)


def direction_gram(g_r: Tensor, g_c: Tensor) -> Gram:
    """Gram matrix (nested Python lists, M x M) of (g_r, g_c[0], ..., g_c[K-1]).

    Returned up to a common positive factor: directions with extreme entries are rescaled by their
    largest absolute entry first, so combiners must only use ratios of Gram entries
    (scale-invariant coefficients), which every combiner here does.
    """
    gram = _gram_tensor(g_r, g_c).tolist()
    low, high = _DIAGONAL_RANGE
    if all(low <= gram[i][i] <= high for i in range(len(gram))):
        return gram
    scale = max(float(g_r.abs().max()), float(g_c.abs().max()))
    if scale > 0 and math.isfinite(scale):
        gram = _gram_tensor(g_r / scale, g_c / scale).tolist()
    return gram


def combine(g_r: Tensor, g_c: Tensor, coefficients: Sequence[float]) -> Tensor:
    """``coefficients[0] * g_r + sum_k coefficients[1 + k] * g_c[k]`` as a new [P] tensor.

    A single non-zero coefficient equal to 1 returns an exact copy of that direction (e.g. g_r
    in reward-only mode); otherwise see :func:`combine_into`.
    """
    nonzero = [index for index, value in enumerate(coefficients) if value != 0]
    if len(nonzero) == 1 and coefficients[nonzero[0]] == 1:
        index = nonzero[0]
        return (g_r if index == 0 else g_c[index - 1]).clone()
    return combine_into(torch.empty_like(g_r), [g_r, *g_c], coefficients)


def combine_into(
    out: Tensor, directions: Sequence[Tensor], coefficients: Sequence[float]
) -> Tensor:
    """Write ``sum_i coefficients[i] * directions[i]`` into ``out`` (1-D tensors of one length).

    The first two terms take one pass over memory (``beta d_0 + alpha d_1``, computed by
    ``torch.addr`` against the unit vector [1]); each further non-zero term takes one more.
    """
    first, *rest = directions
    if not rest:
        return torch.mul(first, coefficients[0], out=out)
    torch.addr(
        first.view(-1, 1),
        rest[0],
        _unit(out.dtype, out.device),
        beta=coefficients[0],
        alpha=coefficients[1],
        out=out.view(-1, 1),
    )
    for direction, coefficient in zip(rest[1:], coefficients[2:], strict=True):
        if coefficient != 0:
            out.add_(direction, alpha=coefficient)
    return out


@functools.cache
def _unit(dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.ones(1, dtype=dtype, device=device)


def cosines(gram: Gram) -> list[float]:
    """Cosine between g_r and each g_c[k] (0 when either has zero norm)."""
    norm_r = math.sqrt(max(gram[0][0], 0.0))
    values = []
    for k in range(1, len(gram)):
        denominator = norm_r * math.sqrt(max(gram[k][k], 0.0))
        value = gram[0][k] / denominator if denominator > 0 else 0.0
        values.append(min(1.0, max(-1.0, value)) if math.isfinite(value) else value)
    return values


def conflicts(gram: Gram) -> list[bool]:
    """Whether g_r and each g_c[k] conflict (g_r . g_c[k] < 0)."""
    return [gram[0][k] < 0 for k in range(1, len(gram))]


def angle_diagnostics(gram: Gram) -> dict[str, list[float] | list[bool]]:
    """``cosine`` [K] and ``conflict`` [K] between g_r and each g_c[k], as Python values."""
    values = cosines(gram)
    return {"cosine": values, "conflict": [value < 0 for value in values]}
