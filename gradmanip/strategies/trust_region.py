"""Trust-region strategies: rules that solve for the step inside a KL ball (CPO, PCPO).

The Euclidean strategies combine directions with coefficients read from their Gram matrix. A
trust-region rule needs more: the natural directions ``x_i = H^-1 g_i`` (H the Fisher matrix plus
damping), their Gram matrix in the metric H, the trust radius delta and the cost excess
``c = J_c_hat - limit``. The natural-gradient base (:class:`gradmanip.algos.NaturalGradient`)
detects a :class:`TrustRegionStrategy`, computes the unscaled natural directions, builds a
:class:`TrustRegionGeometry` from Fisher-vector products it already has and calls
:meth:`TrustRegionStrategy.coefficients_in_metric`. The returned :class:`TrustRegionStep` holds
the step ``d = sum_i natural[i] x_i + sum_i gradient[i] g_i`` and the rule's line-search
acceptance.

Sign convention as everywhere in :mod:`gradmanip.strategies`: ``g_r`` increases the reward
surrogate and ``g_c[k]`` is an IMPROVEMENT direction of constraint k (the gradient of
``E[ratio * (-A_c)]``). The papers' cost gradient is ``b_k = -g_c[k]``, so their
``p_k = H^-1 b_k = -x_c[k]``; with the metric Gram ``G`` of (x_r, x_c[0], ...):
``q = G[0][0]``, ``r_k = g . p_k = -G[0][k]``, ``s_kj = b_k . p_j = G[k][j]``.

On plain directions (:meth:`Strategy.aggregate`, the Euclidean driver) the same rule runs with the
identity metric (``x_i = g_i``) and the strategy's own ``radius``: the update is the rule's step
for ``H = I``. It is not positively homogeneous (the step is sized to the radius), so these
strategies are not linear in the sense of :attr:`Strategy.is_linear`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gradmanip.strategies.base import Strategy, as_episode_cost
from gradmanip.strategies.diagnostics import Value, as_tensors
from gradmanip.strategies.gram import Gram, combine
from gradmanip.strategies.mgda import _solve as solve_linear_system
from gradmanip.strategies.settings import (
    PerConstraint,
    check_positive,
    constraint_count,
    cost_limits,
    format_values,
)

COST_UNITS = ("episode", "step")
MAX_CONSTRAINTS = 12  # the exact projection visits every support of the K constraints
_KKT_TOLERANCE = 1e-10  # constraint violation (relative) accepted as satisfied by the projection


@dataclass(frozen=True)
class TrustRegionGeometry:
    """Inner products of the M = 1 + K surrogate gradients g_i and natural directions x_i.

    ``metric[i][j] = x_i^T H x_j``, ``mixed[i][j] = g_i . x_j`` (gradient i, natural direction
    j) and ``gradient[i][j] = g_i . g_j``, as nested Python floats (absolute values, no rescaling:
    the rules size steps to a radius). Index 0 is the reward, 1..K the constraints.
    """

    metric: Gram
    mixed: Gram
    gradient: Gram

    @staticmethod
    def identity(g_r: Tensor, g_c: Tensor) -> TrustRegionGeometry:
        """The geometry for H = I (``x_i = g_i``): three copies of the float64 Gram matrix."""
        block = torch.cat((g_r.unsqueeze(0), g_c)).double()
        gram = torch.mm(block, block.T).tolist()
        return TrustRegionGeometry(gram, gram, gram)

    @property
    def size(self) -> int:
        return len(self.metric)


@dataclass(frozen=True)
class TrustRegionStep:
    """A rule's step and its line-search acceptance (Achiam et al. 2017, Algorithm 1).

    The step is ``d = sum_i natural[i] x_i + sum_i gradient[i] g_i``. A fraction ``f`` of it,
    tried for ``f = backtrack_factor^k``, k < ``max_steps``, is accepted when the measured mean
    KL is at most the radius, every cost surrogate ``E[ratio * A_c[k]]`` rises by at most
    ``max_cost_increase[k]`` and, if ``require_reward_gain``, the reward surrogate does not
    decrease; otherwise no step is taken.
    """

    natural: list[float]
    gradient: list[float]
    max_cost_increase: list[float]
    require_reward_gain: bool
    backtrack_factor: float
    max_steps: int
    diagnostics: dict[str, Value] = field(default_factory=dict)

    @property
    def weights(self) -> list[float]:
        """Per-objective weights ``natural[i] + gradient[i]``: the step on plain directions
        (H = I), and the weights of the Lagrangian surrogate ``sum_i w_i L_i`` it improves."""
        return [a + b for a, b in zip(self.natural, self.gradient, strict=True)]


def nonnegative_projection(matrix: Gram, rhs: Sequence[float]) -> list[float]:
    """Multipliers nu >= 0 of the projection onto ``{d: rhs_k - (S nu)_k <= 0}`` in dual form.

    Projecting a point ``d_0`` onto the K half-spaces ``c_k + b_k . d <= 0`` in a metric whose
    inverse maps ``b_k`` to ``p_k`` gives ``d = d_0 - sum_k nu_k p_k`` with nu the solution of
    ``min_{nu >= 0} 0.5 nu^T S nu - nu^T rhs`` (``S_kj = b_k . p_j``, ``rhs_k = c_k + b_k . d_0``).
    Solved exactly on supports (smallest first): on a support A, ``S_AA nu_A = rhs_A``; the
    candidate with nu >= 0 that best meets primal feasibility ``rhs - S nu <= 0`` is kept. K = 1
    is ``max(0, rhs / s)``. Constraints with ``S_kk <= 0`` (no direction moves them) are left out.
    """
    count = len(rhs)
    if count > MAX_CONSTRAINTS:
        raise ValueError(
            f"the exact projection visits every support and accepts at most {MAX_CONSTRAINTS} "
            f"constraints, got {count}"
        )
    usable = [k for k in range(count) if matrix[k][k] > 0 and math.isfinite(matrix[k][k])]
    if count == 1:
        return [max(0.0, rhs[0] / matrix[0][0]) if usable else 0.0]
    scale = max([abs(v) for v in rhs] + [matrix[k][k] for k in usable] + [1e-300])

    def violation(nu: list[float]) -> float:
        worst = 0.0
        for k in usable:
            slack = rhs[k] - sum(matrix[k][j] * nu[j] for j in range(count))
            worst = max(worst, slack)
        return worst / scale

    best, best_violation = [0.0] * count, violation([0.0] * count)
    for size in range(1, len(usable) + 1):
        if best_violation <= _KKT_TOLERANCE:
            break
        for support in itertools.combinations(usable, size):
            system = [[matrix[i][j] for j in support] + [rhs[i]] for i in support]
            solution = solve_linear_system(system)
            if solution is None or min(solution) < 0:
                continue
            nu = [0.0] * count
            for index, value in zip(support, solution, strict=True):
                nu[index] = value
            current = violation(nu)
            if current < best_violation:
                best, best_violation = nu, current
    return best


class TrustRegionStrategy(Strategy):
    """Base of the trust-region rules (see the module docstring for the contract).

    Args:
        cost_limit: limit b_k of each constraint (per episode).
        radius: trust radius delta used by :meth:`aggregate` on plain directions (identity
            metric); the natural-gradient base passes its own ``max_kl`` instead.
        cost_units: ``"episode"`` (OmniSafe: ``c = J_c_hat - b``, an episodic quantity) or
            ``"step"`` (OpenAI safety-starter-agents: ``c = (J_c_hat - b) / L`` with L the mean
            episode length, a per-step rate on the scale of the per-sample surrogates).
        episode_length: L used in ``"step"`` units when the caller measures none (plain
            :meth:`aggregate`, or an epoch in which no episode finished).
        backtrack_factor, line_search_steps: line-search fractions ``backtrack_factor^k``,
            k < ``line_search_steps``.
    """

    diagnostic_names = ("mode", "case", "cost_excess", "cost_multiplier")
    positively_homogeneous = False

    def __init__(
        self,
        cost_limit: PerConstraint = 25.0,
        radius: float = 0.01,
        cost_units: str = "episode",
        episode_length: float = 1000.0,
        backtrack_factor: float = 0.8,
        line_search_steps: int = 20,
        num_constraints: int | None = None,
    ) -> None:
        count = constraint_count(cost_limit=cost_limit)
        limit = cost_limits(cost_limit, count)
        check_positive(radius, "radius")
        if not math.isfinite(radius):
            raise ValueError(f"radius must be finite, got {radius}")
        if cost_units not in COST_UNITS:
            raise ValueError(
                f"cost_units must be one of {COST_UNITS}, got {cost_units!r} ('episode': "
                "c = J_c_hat - limit; 'step': divided by the mean episode length)"
            )
        check_positive(episode_length, "episode_length")
        check_positive(backtrack_factor, "backtrack_factor")
        if not backtrack_factor < 1:
            raise ValueError(f"backtrack_factor must lie in (0, 1), got {backtrack_factor}")
        if (
            isinstance(line_search_steps, bool)
            or not isinstance(line_search_steps, int)
            or line_search_steps < 1
        ):
            raise ValueError(f"line_search_steps must be an int >= 1, got {line_search_steps!r}")
        super().__init__(num_constraints=num_constraints or count)
        self.radius = float(radius)
        self.cost_units = cost_units
        self.episode_length = float(episode_length)
        self.backtrack_factor = float(backtrack_factor)
        self.line_search_steps = line_search_steps
        self.register_buffer("cost_limit", limit, persistent=False)

    @property
    def is_linear(self) -> bool:
        return False

    # ------------------------------------------------------------------------------ interface
    def coefficients_in_metric(
        self,
        geometry: TrustRegionGeometry,
        episode_cost: Tensor,
        radius: float,
        episode_length: float | None = None,
    ) -> TrustRegionStep:
        """The rule's step in the metric of ``geometry`` for J_c_hat ``episode_cost`` [K] and
        trust radius ``radius``; ``episode_length`` is the measured mean episode length (used in
        ``"step"`` units; None or NaN falls back to the ``episode_length`` setting)."""
        episode_cost = as_episode_cost(episode_cost)
        self.check_gram(geometry.metric, episode_cost)
        for name in ("mixed", "gradient"):
            matrix = getattr(geometry, name)
            if len(matrix) != geometry.size or any(len(row) != geometry.size for row in matrix):
                raise ValueError(f"geometry.{name} must be {geometry.size} x {geometry.size}")
        if not (radius > 0 and math.isfinite(radius)):
            raise ValueError(f"radius must be a finite number > 0, got {radius}")
        return self._solve(geometry, self.cost_excess(episode_cost, episode_length), radius)

    def cost_excess(self, episode_cost: Tensor, episode_length: float | None = None) -> list[float]:
        """c_k = J_c_hat[k] - b_k, divided by the episode length in ``"step"`` units."""
        costs = episode_cost.double().tolist()
        limits = self.cost_limit.tolist()
        limits = limits * len(costs) if len(limits) == 1 else limits
        excess = [cost - limit for cost, limit in zip(costs, limits, strict=True)]
        if self.cost_units == "step":
            length = episode_length
            if length is None or not (length > 0 and math.isfinite(length)):
                length = self.episode_length
            excess = [value / length for value in excess]
        return excess

    def _aggregate(
        self, g_r: Tensor, g_c: Tensor, episode_cost: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        step = self._solve(
            TrustRegionGeometry.identity(g_r, g_c), self.cost_excess(episode_cost), self.radius
        )
        # float64: coefficients ~ 1 / |g| (steps sized to a radius or a cost excess) overflow
        # float32 for tiny directions even when the update itself is representable
        update = combine(g_r.double(), g_c.double(), step.weights).to(g_r.dtype)
        return update, as_tensors(step.diagnostics, g_r.device)

    def _solve(self, geometry: TrustRegionGeometry, excess: list[float], radius: float):
        """The rule: a :class:`TrustRegionStep` from the geometry, c [K] and the radius."""
        raise NotImplementedError(f"{type(self).__name__} must implement _solve")

    def _step(
        self,
        natural: list[float],
        gradient: list[float],
        excess: list[float],
        require_reward_gain: bool,
        diagnostics: dict[str, Value],
    ) -> TrustRegionStep:
        return TrustRegionStep(
            natural=natural,
            gradient=gradient,
            max_cost_increase=[max(-value, 0.0) for value in excess],
            require_reward_gain=require_reward_gain,
            backtrack_factor=self.backtrack_factor,
            max_steps=self.line_search_steps,
            diagnostics=diagnostics,
        )

    def _settings(self) -> dict[str, object]:
        return {
            "cost_limit": format_values(self.cost_limit),
            "radius": self.radius,
            "cost_units": self.cost_units,
            "episode_length": self.episode_length,
            "backtrack_factor": self.backtrack_factor,
            "line_search_steps": self.line_search_steps,
        }


def reward_step_scale(q: float, radius: float) -> float:
    """``sqrt(2 delta / q)``: the factor that puts ``x_r`` on the trust radius (0 when q <= 0)."""
    return math.sqrt(2.0 * radius / q) if q > 0 and math.isfinite(q) else 0.0
