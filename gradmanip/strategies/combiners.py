"""Combiners: turn the directions (g_r, g_c[0..K-1]) into one, in coefficient space.

A combiner reads the Gram matrix ``gram`` (M x M nested lists of floats, M = 1 + K, index 0 =
reward, 1..K = constraints; see :func:`gradmanip.strategies.gram.direction_gram`) and returns the
coefficients c (M floats) of the combined direction ``sum_i c_i d_i``. Coefficients depend only
on ratios of Gram entries, so every combiner is positively homogeneous: scaling all directions by
s > 0 scales the combination by s.

Combiners are small ``nn.Module`` objects so that a switching rule can take any of them as its
in-band rule (``SoftSwitch(in_band=PCGradCombiner())`` is a one-line change).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gradmanip.strategies.gram import Gram
from gradmanip.strategies.settings import (
    PerConstraint,
    check_finite,
    check_nonnegative,
    constraint_count,
    format_values,
    per_constraint,
)

Order = list[list[int]]


def fixed_order(num_directions: int) -> Order:
    """Row i lists the other directions j != i in ascending index order."""
    return [[j for j in range(num_directions) if j != i] for i in range(num_directions)]


def random_order(num_directions: int, generator: torch.Generator) -> Order:
    """Row i is a random permutation of the other directions (PCGrad), drawn from ``generator``."""
    order = fixed_order(num_directions)
    if num_directions <= 2:
        return order
    keys = torch.rand((num_directions, num_directions - 1), generator=generator)
    permutations = keys.argsort(dim=1).tolist()
    return [[row[j] for j in perm] for row, perm in zip(order, permutations, strict=True)]


def projection_matrix(gram: Gram, order: Order, active: Sequence[bool] | None = None) -> Gram:
    """Coefficient matrix A (M x M) of the projected directions ``d_i' = sum_k A[i][k] d_k``.

    For each direction i and each other direction j in ``order[i]``: if the current d_i' conflicts
    with the ORIGINAL d_j (d_i' . d_j < 0), project d_i' onto the normal plane of d_j:
    d_i' <- d_i' - (d_i' . d_j / |d_j|^2) d_j (Yu et al. 2020, PCGrad, Alg. 1). With two
    directions this is exactly the PCRPO projection (Gu et al. 2024, Sec. 4, g_r' and g_c').
    A zero-norm d_j never conflicts (projection onto a zero vector is the identity). Inactive
    directions (``active[i]`` False) get a zero row and are not used as projection targets.
    """
    size = len(gram)
    active = [True] * size if active is None else list(active)
    matrix = [[float(i == k and active[i]) for k in range(size)] for i in range(size)]
    for i in range(size):
        if not active[i]:
            continue
        row = matrix[i]
        for j in order[i]:
            if not active[j] or gram[j][j] <= 0:
                continue
            dot = sum(row[k] * gram[k][j] for k in range(size))
            if dot < 0:
                row[j] -= dot / gram[j][j]
    return matrix


def _two_task_projection(gram: Gram, x_r: float, x_c: float) -> list[float]:
    """Closed form of ``x_r g_r' + x_c g_c'`` for two directions (same as projection_matrix):
    (x_r - x_c dot/|g_r|^2) g_r + (x_c - x_r dot/|g_c|^2) g_c under conflict (dot < 0)."""
    dot, norm_r, norm_c = gram[0][1], gram[0][0], gram[1][1]
    if not dot < 0 or norm_r <= 0 or norm_c <= 0:
        return [x_r, x_c]
    return [x_r - x_c * dot / norm_r, x_c - x_r * dot / norm_c]


class Combiner(nn.Module):
    """Base combiner: ``coefficients(gram, active) -> c`` (M floats).

    ``active`` (M bools, optional) restricts the combination to a subset of the directions;
    inactive directions receive coefficient 0. ``num_constraints`` is the K the combiner was
    configured for (None = any).
    """

    num_constraints: int | None = None

    def coefficients(self, gram: Gram, active: Sequence[bool] | None = None) -> list[float]:
        raise NotImplementedError(f"{type(self).__name__} must implement coefficients")

    def _settings(self) -> dict[str, object]:
        return {}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self._settings().items())
        return f"{type(self).__name__}({inner})"


class _WeightedCombiner(Combiner):
    """Shared handling of the reward weight x_r and the per-constraint cost weights x_c."""

    def __init__(self, reward_weight: float, cost_weight: PerConstraint) -> None:
        super().__init__()
        count = constraint_count(cost_weight=cost_weight)
        reward = per_constraint(reward_weight, "reward_weight", None)
        cost = per_constraint(cost_weight, "cost_weight", count)
        if reward.numel() != 1:
            raise ValueError("reward_weight must be a single float")
        for name, values in (("reward_weight", reward), ("cost_weight", cost)):
            check_finite(values, name)
            check_nonnegative(values, name, "weights scale improvement directions")
        if reward.item() == 0 and (cost == 0).all():
            raise ValueError("reward_weight and cost_weight are all 0; give at least one > 0")
        self.num_constraints = count
        self.reward_weight = reward.item()
        self.cost_weight = cost.tolist()

    def weights(self, num_directions: int, active: Sequence[bool] | None = None) -> list[float]:
        """Weights (x_r, x_c[0], ..., x_c[K-1]) for M = ``num_directions``: a scalar cost weight
        is the total weight of the active constraints (all by default), shared equally (x_c / K
        each for K active), so that the weights sum to x_r + x_c for any K; a sequence gives each
        constraint its own weight. Inactive directions get weight 0."""
        active = [True] * num_directions if active is None else list(active)
        cost = self.cost_weight
        if len(cost) == 1:
            count = max(1, sum(active[1:]))
            cost = [cost[0] / count] * (num_directions - 1)
        return [w if on else 0.0 for w, on in zip([self.reward_weight, *cost], active, strict=True)]

    def _settings(self) -> dict[str, object]:
        return {
            "reward_weight": format_values(torch.tensor([self.reward_weight])),
            "cost_weight": format_values(torch.tensor(self.cost_weight)),
        }


class WeightedSumCombiner(_WeightedCombiner):
    """Weighted sum ``x_r g_r + sum_k x_c[k] g_c[k]`` (no projection); weights >= 0; a scalar
    x_c is shared equally by the K constraints (x_c / K each)."""

    def __init__(self, reward_weight: float = 0.5, cost_weight: PerConstraint = 0.5) -> None:
        super().__init__(reward_weight, cost_weight)

    def coefficients(self, gram: Gram, active: Sequence[bool] | None = None) -> list[float]:
        return self.weights(len(gram), active)


class ProjectionCombiner(_WeightedCombiner):
    """PCRPO projection on conflict (Gu et al. 2024, Sec. 4, "gradient manipulation").

    Two directions: if g_r . g_c < 0, g_r' = g_r - (g_r.g_c / |g_c|^2) g_c and
    g_c' = g_c - (g_c.g_r / |g_r|^2) g_r (each onto the normal plane of the ORIGINAL other), else
    unchanged; result ``x_r g_r' + x_c g_c'``. Under conflict the result satisfies
    result . g_r = x_r |g_r|^2 sin^2(theta) >= 0 and likewise for g_c. With x_r = x_c = 1 this is
    two-task PCGrad. The paper uses x_r + x_c = 1 (0.5 / 0.5); weights need only be >= 0 here.
    K > 1 constraints: every direction is projected against every other one in ascending index
    order (PCGrad with a deterministic order), then weighted; a scalar x_c is shared equally by
    the constraints (x_c / K each), so the weights still sum to x_r + x_c.
    """

    def __init__(self, reward_weight: float = 0.5, cost_weight: PerConstraint = 0.5) -> None:
        super().__init__(reward_weight, cost_weight)

    def coefficients(self, gram: Gram, active: Sequence[bool] | None = None) -> list[float]:
        size = len(gram)
        weights = self.weights(size, active)
        if size == 2 and active is None:
            return _two_task_projection(gram, weights[0], weights[1])
        matrix = projection_matrix(gram, fixed_order(size), active)
        return [sum(weights[i] * matrix[i][k] for i in range(size)) for k in range(size)]


class PCGradCombiner(Combiner):
    """PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning", Alg. 1).

    Each direction is projected, in a random order of the others, onto the normal plane of every
    ORIGINAL direction it conflicts with; the projected directions are summed (weights 1). The
    order comes from a generator seeded with ``seed`` (None: a fresh seed drawn once); its state
    is part of ``state_dict()`` and :meth:`reset` restarts it from the initial seed.
    """

    def __init__(self, seed: int | None = 0) -> None:
        super().__init__()
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self.seed = seed
        self.generator = torch.Generator()
        self.initial_seed = self.generator.seed() if seed is None else seed
        self.reset()

    def reset(self) -> None:
        """Restart the order generator from its initial seed."""
        self.generator.manual_seed(self.initial_seed)

    def coefficients(self, gram: Gram, active: Sequence[bool] | None = None) -> list[float]:
        size = len(gram)
        matrix = projection_matrix(gram, random_order(size, self.generator), active)
        return [sum(matrix[i][k] for i in range(size)) for k in range(size)]

    def get_extra_state(self) -> dict[str, object]:
        return {"generator_state": self.generator.get_state(), "initial_seed": self.initial_seed}

    def set_extra_state(self, state: dict[str, object]) -> None:
        self.generator.set_state(state["generator_state"])
        self.initial_seed = state["initial_seed"]

    def _settings(self) -> dict[str, object]:
        return {"seed": self.seed}
