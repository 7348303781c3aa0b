"""CRPO hard switching (Xu et al., ICML 2021)."""

from __future__ import annotations

from torch import Tensor

from gradmanip.strategies.base import MODE_COST_ONLY, MODE_REWARD_ONLY, Strategy
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.gram import Gram, angle_diagnostics
from gradmanip.strategies.settings import (
    PerConstraint,
    broadcast,
    check_nonnegative,
    constraint_count,
    cost_limits,
    format_values,
    per_constraint,
)


class HardSwitch(Strategy):
    """CRPO hard switching (Xu et al. 2021, "CRPO: A New Approach for Safe RL with Convergence
    Guarantee", Alg. 1): ``update = g_r if J_c_hat <= b + tolerance else g_c``.

    A constraint is violated when ``J_c_hat[k] > b_k + tolerance_k`` (strict; exactly on the
    edge the update is g_r), compared in float64. K > 1 constraints: only violated constraints
    are followed, the one with the largest excess ``J_c_hat[k] - (b_k + tolerance_k)`` (ties ->
    lowest index); with none violated the update is g_r.
    """

    name = "hard_switch"
    diagnostic_names = ("mode", "cosine", "conflict", "followed_constraint")

    def __init__(self, cost_limit: PerConstraint = 25.0, tolerance: PerConstraint = 0.0) -> None:
        count = constraint_count(cost_limit=cost_limit, tolerance=tolerance)
        limit = cost_limits(cost_limit, count)
        tol = per_constraint(tolerance, "tolerance", count)
        check_nonnegative(
            tol, "tolerance", "the switch to g_c happens above cost_limit + tolerance"
        )
        super().__init__(num_constraints=count)
        self.register_buffer("cost_limit", limit, persistent=False)
        self.register_buffer("tolerance", tol, persistent=False)

    def _coefficients(
        self, gram: Gram, episode_cost: Tensor
    ) -> tuple[list[float], dict[str, Value]]:
        costs = episode_cost.tolist()
        count = len(costs)
        limits = broadcast(self.cost_limit, count)
        tolerances = broadcast(self.tolerance, count)
        edges = [b + t for b, t in zip(limits, tolerances, strict=True)]
        violated = [k for k in range(count) if costs[k] > edges[k]]
        if violated:  # the largest excess J_k - (b_k + tol_k); ties -> lowest index
            mode = MODE_COST_ONLY
            followed = max(violated, key=lambda k: costs[k] - edges[k])
        else:
            mode, followed = MODE_REWARD_ONLY, -1
        coefficients = [0.0] * (1 + count)
        coefficients[1 + followed] = 1.0  # followed = -1: g_r
        return coefficients, {
            "mode": mode,
            **angle_diagnostics(gram),
            "followed_constraint": followed,
        }

    def _settings(self) -> dict[str, object]:
        return {
            "cost_limit": format_values(self.cost_limit),
            "tolerance": format_values(self.tolerance),
        }
