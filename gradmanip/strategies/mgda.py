"""MGDA: the minimum-norm point of the convex hull of the directions (Desideri 2012)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from gradmanip.strategies.combiner_strategy import CombinerStrategy
from gradmanip.strategies.combiners import Combiner
from gradmanip.strategies.gram import Gram

# The exact solve visits every support (2^M - 1 small linear systems): meant for a handful of
# directions, as in safe RL (M = 1 + K).
MAX_DIRECTIONS = 12
_WEIGHT_TOLERANCE = 1e-9
_SINGULAR = 1e-13  # relative pivot size below which a support's system counts as singular
_OPTIMAL = 1e-13  # KKT violation (relative to the largest squared norm) taken as optimal


def min_norm_weights(gram: Gram) -> list[float]:
    """Convex weights alpha minimising ``|sum_i alpha_i d_i|^2`` (Sener & Koltun 2018, Eq. 3),
    solved exactly from the Gram matrix of the directions.

    Two directions: the closed form ``alpha_0 = clip((G11 - G01) / (G00 - 2 G01 + G11), 0, 1)``.
    More: the optimum lies in the affine hull of some support S, where it solves the KKT system
    ``[[G_S, 1], [1^T, 0]] [v; mu] = [0; 1]``. Supports are solved smallest first; among the
    feasible solutions (v >= 0) the one that best meets the optimality condition
    ``(G alpha)_i >= alpha^T G alpha`` for every i is kept, and the search stops at the first
    support size that meets it (to rounding). The result u = sum alpha_i d_i
    therefore satisfies ``u . d_i >= |u|^2`` for every direction up to rounding, and u = 0 when
    0 lies in the convex hull (no common improvement direction exists).
    """
    size = len(gram)
    if size == 1:
        return [1.0]
    if size == 2:
        difference = gram[0][0] - 2 * gram[0][1] + gram[1][1]
        if difference <= 0:
            return [0.5, 0.5]
        alpha = min(1.0, max(0.0, (gram[1][1] - gram[0][1]) / difference))
        return [alpha, 1.0 - alpha]
    if size > MAX_DIRECTIONS:
        raise ValueError(
            f"MGDA solves the min-norm problem exactly over all supports and accepts at most "
            f"{MAX_DIRECTIONS} directions, got {size}"
        )
    scale = max(gram[i][i] for i in range(size))
    if not 0 < scale < math.inf:
        return [1.0 / size] * size  # all directions zero (or non-finite: nothing to solve)
    matrix = [[value / scale for value in row] for row in gram]
    best, best_violation = [1.0 / size] * size, math.inf
    for support_size in range(1, size + 1):
        for support in itertools.combinations(range(size), support_size):
            weights = _affine_min_norm(matrix, support)
            if weights is None:
                continue
            violation = _kkt_violation(matrix, weights)
            if violation < best_violation:
                best, best_violation = weights, violation
        if best_violation <= _OPTIMAL:
            break  # the smallest optimal support is found: larger ones add nothing
    return best


def _affine_min_norm(matrix: Gram, support: tuple[int, ...]) -> list[float] | None:
    """Weights (full length) of the min-norm point of the affine hull of the ``support``
    directions, from ``[[G_S, 1], [1^T, 0]] [v; mu] = [0; 1]``; None if that point lies outside
    the convex hull (some v < 0) or the system is singular (affinely dependent support, whose
    optimum a smaller support also reaches)."""
    count = len(support)
    system = [[matrix[i][j] for j in support] + [1.0, 0.0] for i in support]
    system.append([1.0] * count + [0.0, 1.0])
    solution = _solve(system)
    if solution is None:
        return None
    values = solution[:count]
    if min(values) < -_WEIGHT_TOLERANCE:
        return None
    values = [max(v, 0.0) for v in values]
    total = sum(values)
    weights = [0.0] * len(matrix)
    for index, value in zip(support, values, strict=True):
        weights[index] = value / total
    return weights


def _kkt_violation(matrix: Gram, weights: list[float]) -> float:
    """``max(0, |u|^2 - min_i u . d_i)`` for u = sum_i weights_i d_i: zero exactly at the
    optimum (the KKT conditions of the simplex-constrained problem are sufficient)."""
    size = len(matrix)
    products = [sum(matrix[i][k] * weights[k] for k in range(size)) for i in range(size)]
    norm = sum(w * p for w, p in zip(weights, products, strict=True))
    return max(0.0, norm - min(products))


def _solve(system: list[list[float]]) -> list[float] | None:
    """Gaussian elimination with partial pivoting on an augmented n x (n + 1) system; None when
    a pivot vanishes relative to the matrix (singular)."""
    size = len(system)
    largest = max(abs(v) for row in system for v in row[:size])
    for column in range(size):
        pivot = max(range(column, size), key=lambda r: abs(system[r][column]))
        if abs(system[pivot][column]) <= _SINGULAR * largest:
            return None
        system[column], system[pivot] = system[pivot], system[column]
        head = system[column]
        for row in system[column + 1 :]:
            factor = row[column] / head[column]
            if factor:
                for k in range(column, size + 1):
                    row[k] -= factor * head[k]
    solution = [0.0] * size
    for row_index in range(size - 1, -1, -1):
        row = system[row_index]
        tail = sum(row[k] * solution[k] for k in range(row_index + 1, size))
        solution[row_index] = (row[size] - tail) / row[row_index]
    return solution


class MGDACombiner(Combiner):
    """Minimum-norm convex combination of the (active) directions (MGDA; Desideri 2012,
    "Multiple-gradient descent algorithm", Sener & Koltun 2018, Eq. 3), solved exactly (see
    :func:`min_norm_weights`; at most 12 directions).

    The result u satisfies u . d_i >= |u|^2 >= 0 for every direction: no objective gets worse to
    first order. It is zero when the directions admit no common improvement (Pareto-stationary).
    """

    def coefficients(self, gram: Gram, active: Sequence[bool] | None = None) -> list[float]:
        size = len(gram)
        indices = [i for i in range(size) if active is None or active[i]]
        sub_gram = [[gram[i][j] for j in indices] for i in indices]
        weights = min_norm_weights(sub_gram)
        coefficients = [0.0] * size
        for index, weight in zip(indices, weights, strict=True):
            coefficients[index] = weight
        return coefficients


class MGDA(CombinerStrategy):
    """MGDA on the 1 + K objectives, independent of J_c_hat: the minimum-norm point of the convex
    hull of g_r and every g_c[k] (see :class:`MGDACombiner`). Supports K <= 11; use
    ``SoftSwitch(in_band=MGDACombiner())`` to apply it only inside the PCRPO band.
    """

    name = "mgda"

    def __init__(self) -> None:
        super().__init__(MGDACombiner())
