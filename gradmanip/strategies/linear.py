"""Flat-tensor helpers: Gram matrix of the directions and linear combinations of them.

Every built-in strategy returns an update that is a linear combination of its input directions,
``update = c_0 g_r + sum_k c_k g_c[k]``. The coefficients c are computed from the M x M Gram
matrix of the M = 1 + K directions (index 0 = reward, 1..K = constraints). The [P]-sized work is
one Gram product and one matrix-vector product on tensors; the M x M algebra runs on Python
floats (M is tiny, and one ``tolist()`` is far cheaper than dozens of tiny tensor operations).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

Gram = list[list[float]]

# A Gram diagonal outside this range means overflow (inf/nan) or entries so small that their
# squares underflow; the directions are then rescaled by a common factor before the product.
_DIAGONAL_RANGE = DIAGONAL_RANGE = (1e-30, 1e30)


def stacked(g_r: Tensor, g_c: Tensor) -> Tensor | None:
    """[M, P] view of (g_r, g_c) when g_c directly follows g_r in memory (as in the buffer of
    :class:`gradmanip.directions.GradientDriver`), else None."""
    size = g_r.shape[0]
    if (
        g_r.is_contiguous()
        and g_c.is_contiguous()
        and g_c.data_ptr() == g_r.data_ptr() + size * g_r.element_size()
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
    in reward-only mode). Directions stored back to back (the driver's buffer) are combined by
    one matrix-vector product; otherwise by scalar multiply-adds that skip zero coefficients.
    """
    nonzero = [index for index, value in enumerate(coefficients) if value != 0]
    if len(nonzero) == 1 and coefficients[nonzero[0]] == 1:
        index = nonzero[0]
        return (g_r if index == 0 else g_c[index - 1]).clone()
    block = stacked(g_r, g_c)
    if block is not None:
        weights = torch.tensor(coefficients, dtype=g_r.dtype, device=g_r.device)
        return torch.mv(block.T, weights)
    if not nonzero:
        return torch.zeros_like(g_r)
    directions = [g_r if index == 0 else g_c[index - 1] for index in nonzero]
    result = directions[0] * coefficients[nonzero[0]]
    for direction, index in zip(directions[1:], nonzero[1:], strict=True):
        result.add_(direction, alpha=coefficients[index])
    return result


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


def angle_diagnostics(gram: Gram, device: torch.device) -> dict[str, Tensor]:
    """``cosine`` [K] (float64) and ``conflict`` [K] (bool) between g_r and each g_c[k]."""
    values = cosines(gram)
    if len(values) == 1:  # the common K = 1: torch.full is the cheapest constructor
        return {
            "cosine": torch.full((1,), values[0], dtype=torch.float64, device=device),
            "conflict": torch.full((1,), values[0] < 0, dtype=torch.bool, device=device),
        }
    return {
        "cosine": torch.tensor(values, dtype=torch.float64, device=device),
        # same sign as g_r . g_c[k]; built from the floats (a tensor creation, no kernel)
        "conflict": torch.tensor([value < 0 for value in values], device=device),
    }


def mode_tensor(mode: int, device: torch.device) -> Tensor:
    """Mode code as an int64 scalar tensor (0 both, 1 reward only, 2 cost only)."""
    return torch.scalar_tensor(mode, dtype=torch.int64, device=device)
