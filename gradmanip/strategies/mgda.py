"""MGDA: the minimum-norm point of the convex hull of the directions (Desideri 2012)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from gradmanip.strategies.base import MODE_BOTH, Strategy
from gradmanip.strategies.combine import Combiner
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.linear import (
    Gram,
    angle_diagnostics,
)


def min_norm_weights(gram: Gram, iterations: int = 100, tolerance: float = 1e-10) -> list[float]:
    """Convex weights alpha minimising |sum_i alpha_i d_i|^2 (Sener & Koltun 2018, Alg. 2).

    Two directions: the closed form alpha_0 = clip((d_1 - d_0) . d_1 / |d_0 - d_1|^2, 0, 1).
    More: Frank-Wolfe with exact line search on the Gram matrix, stopped when the step falls
    below ``tolerance`` or after ``iterations`` steps.
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
    alpha = [1.0 / size] * size
    for _ in range(iterations):
        gradient = [sum(gram[i][k] * alpha[k] for k in range(size)) for i in range(size)]
        target = min(range(size), key=gradient.__getitem__)
        norm_d = sum(alpha[i] * gradient[i] for i in range(size))
        dot_target = gradient[target]
        norm_target = gram[target][target]
        denominator = norm_d - 2 * dot_target + norm_target
        if denominator <= 0:
            break
        step = min(1.0, max(0.0, (norm_d - dot_target) / denominator))
        if step < tolerance:
            break
        alpha = [(1 - step) * a for a in alpha]
        alpha[target] += step
    return alpha


class MGDACombiner(Combiner):
    """Minimum-norm convex combination of the (active) directions (MGDA; Desideri 2012,
    "Multiple-gradient descent algorithm", Sener & Koltun 2018, Eq. 3).

    The result d satisfies d . d_i >= |d|^2 >= 0 for every direction: no objective gets worse to
    first order. It is zero when the directions admit no common improvement (Pareto-stationary).
    """

    def __init__(self, iterations: int = 100) -> None:
        super().__init__()
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be a positive int, got {iterations!r}")
        self.iterations = iterations

    def coefficients(self, gram: Gram, active: Sequence[bool] | None = None) -> list[float]:
        size = len(gram)
        indices = [i for i in range(size) if active is None or active[i]]
        sub_gram = [[gram[i][j] for j in indices] for i in indices]
        weights = min_norm_weights(sub_gram, self.iterations)
        coefficients = [0.0] * size
        for index, weight in zip(indices, weights, strict=True):
            coefficients[index] = weight
        return coefficients

    def _settings(self) -> dict[str, object]:
        return {"iterations": self.iterations}


class MGDA(Strategy):
    """MGDA on the 1 + K objectives, independent of J_c_hat: the minimum-norm point of the convex
    hull of g_r and every g_c[k] (see :class:`MGDACombiner`). Supports any K; use
    ``SoftSwitch(in_band=MGDACombiner())`` to apply it only inside the PCRPO band.
    """

    name = "mgda"
    diagnostic_names = ("mode", "cosine", "conflict", "reward_weight")

    def __init__(self, iterations: int = 100) -> None:
        super().__init__(num_constraints=None)
        self.combiner = MGDACombiner(iterations)

    def _coefficients(
        self, gram: Gram, episode_cost: Tensor
    ) -> tuple[list[float], dict[str, Value]]:
        coefficients = self.combiner.coefficients(gram)
        diagnostics = {
            "mode": MODE_BOTH,
            **angle_diagnostics(gram),
            "reward_weight": coefficients[0],
        }
        return coefficients, diagnostics

    def _settings(self) -> dict[str, object]:
        return {"iterations": self.combiner.iterations}
