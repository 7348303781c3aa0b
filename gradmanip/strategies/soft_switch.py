"""PCRPO soft switching with slack (Gu et al., AAAI 2024)."""

from __future__ import annotations

from torch import Tensor

from gradmanip.strategies.base import MODE_BOTH, MODE_COST_ONLY, MODE_REWARD_ONLY, Strategy
from gradmanip.strategies.combiners import Combiner, fixed_order, projection_matrix
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.gram import Gram, angle_diagnostics
from gradmanip.strategies.in_band import in_band_combiner
from gradmanip.strategies.settings import (
    PerConstraint,
    broadcast,
    constraint_count,
    cost_limits,
    format_values,
    per_constraint,
)


class SoftSwitch(Strategy):
    """PCRPO soft switching with slack (Gu et al. 2024, "Balance Reward and Safety Optimization
    for Safe RL: A Perspective of Gradient Manipulation", Sec. 4, Alg. 1).

    With cost limit b, upper slack h+ >= 0 and lower slack h- <= 0, from J_c_hat each epoch:

    1. J_c_hat > b + h+  -> cost only:   update = g_c,
    2. J_c_hat < b + h-  -> reward only: update = g_r,
    3. otherwise         -> both: ``in_band`` combiner (default: projection on conflict,
       x_r = x_c = 0.5, see :class:`ProjectionCombiner`). ``reward_weight`` and ``cost_weight``
       set x_r and x_c of the ``"projection"`` and ``"weighted_sum"`` combiners by name.

    Exactly on a band edge the rule is in band (strict inequalities, as in the paper). Infinite
    slack is legal (h+ = inf: never cost only; h- = -inf: never reward only).

    Slack annealing (optional, ``anneal_epochs=T``): each :meth:`update_state` multiplies both
    slacks by (1 - 1/T), closing the band onto b. The current slack lives in buffers.

    K > 1 constraints (one band per constraint, scalar settings shared by all): cost only if ANY
    constraint is above its band (update = the violated constraints' directions, projected
    against each other on conflict and averaged: weights summing to 1); reward only if ALL are
    below their bands; otherwise in band, where the combiner sees the reward and the constraints in
    their bands (a constraint below its band is satisfied with margin and left out, as the
    reward-only mode leaves out a single one); the default shares x_c equally among them, so the
    weights again sum to x_r + x_c = 1. K is fixed when any per-constraint setting is a
    sequence.
    """

    name = "soft_switch"
    diagnostic_names = ("mode", "cosine", "conflict")

    def __init__(
        self,
        cost_limit: PerConstraint = 25.0,
        upper_slack: PerConstraint = 0.0,
        lower_slack: PerConstraint = 0.0,
        in_band: Combiner | str | None = None,
        anneal_epochs: int | None = None,
        reward_weight: float | None = None,
        cost_weight: PerConstraint | None = None,
    ) -> None:
        count = constraint_count(
            cost_limit=cost_limit, upper_slack=upper_slack, lower_slack=lower_slack
        )
        limit = cost_limits(cost_limit, count)
        upper = per_constraint(upper_slack, "upper_slack", count)
        lower = per_constraint(lower_slack, "lower_slack", count)
        if (upper < 0).any():
            raise ValueError(
                f"upper_slack (h+) must be >= 0, got {upper.tolist()}; the cost-only mode starts "
                "above cost_limit + upper_slack (use float('inf') to never switch to cost only)"
            )
        if (lower > 0).any():
            raise ValueError(
                f"lower_slack (h-) must be <= 0, got {lower.tolist()}; the reward-only mode starts "
                "below cost_limit + lower_slack (use float('-inf') to never switch to reward only)"
            )
        if anneal_epochs is not None and (
            isinstance(anneal_epochs, bool)
            or not isinstance(anneal_epochs, int)
            or anneal_epochs < 1
        ):
            raise ValueError(f"anneal_epochs must be a positive int or None, got {anneal_epochs!r}")
        combiner = in_band_combiner(in_band, reward_weight, cost_weight)
        if combiner.num_constraints is not None:
            if count is not None and combiner.num_constraints != count:
                raise ValueError(
                    f"in_band combiner is configured for {combiner.num_constraints} constraints "
                    f"but the limits/slacks give {count}; use one value per constraint in both"
                )
            count = combiner.num_constraints
        super().__init__(num_constraints=count)
        self.in_band = combiner
        self.anneal_epochs = anneal_epochs
        self.register_buffer("cost_limit", limit, persistent=False)
        self.register_buffer("initial_upper_slack", upper, persistent=False)
        self.register_buffer("initial_lower_slack", lower, persistent=False)
        self.register_buffer("upper_slack", upper.clone())
        self.register_buffer("lower_slack", lower.clone())

    def reset(self) -> None:
        """Restore the initial (un-annealed) slack and restart a random in-band combiner."""
        self.upper_slack.copy_(self.initial_upper_slack)
        self.lower_slack.copy_(self.initial_lower_slack)
        reset_combiner = getattr(self.in_band, "reset", None)
        if callable(reset_combiner):
            reset_combiner()

    def _update_state(self, episode_cost: Tensor) -> None:
        if self.anneal_epochs is None:
            return
        factor = 1.0 - 1.0 / self.anneal_epochs
        for slack in (self.upper_slack, self.lower_slack):
            if factor == 0:
                slack.zero_()
            else:
                slack.mul_(factor)

    def select_mode(self, episode_cost: Tensor) -> tuple[int, list[bool], list[bool]]:
        """Mode code and, per constraint, whether it is above its band and below it."""
        costs = episode_cost.tolist()
        upper_edge, lower_edge = self._band_edges(len(costs))
        above = [c > edge for c, edge in zip(costs, upper_edge, strict=True)]
        below = [c < edge for c, edge in zip(costs, lower_edge, strict=True)]
        if any(above):
            return MODE_COST_ONLY, above, below
        return (MODE_REWARD_ONLY if all(below) else MODE_BOTH), above, below

    def _band_edges(self, count: int) -> tuple[list[float], list[float]]:
        """(b + h+, b + h-) per constraint as floats, recomputed only when a buffer changed
        (in-place updates bump ``_version``; replaced buffers change ``data_ptr``)."""
        named = self._buffers  # (plain dict access: this runs at every step)
        buffers = (named["cost_limit"], named["upper_slack"], named["lower_slack"])
        key = (count, *((b._version, b.data_ptr()) for b in buffers))
        cached = self.__dict__.get("_edges_cache")
        if cached is None or cached[0] != key:
            limits, upper, lower = (broadcast(b, count) for b in buffers)
            edges = (
                [b + h for b, h in zip(limits, upper, strict=True)],
                [b + h for b, h in zip(limits, lower, strict=True)],
            )
            cached = self.__dict__["_edges_cache"] = (key, edges)
        return cached[1]

    def _coefficients(
        self, gram: Gram, episode_cost: Tensor
    ) -> tuple[list[float], dict[str, Value]]:
        mode, above, below = self.select_mode(episode_cost)
        size = len(gram)
        if mode == MODE_COST_ONLY:
            active = [False, *above]
            matrix = projection_matrix(gram, fixed_order(size), active)
            share = 1.0 / sum(above)
            coefficients = [share * sum(row[k] for row in matrix) for k in range(size)]
        elif mode == MODE_REWARD_ONLY:
            coefficients = [1.0] + [0.0] * (size - 1)
        elif any(below):  # in band, with constraints below their bands left out
            coefficients = self.in_band.coefficients(gram, [True, *(not b for b in below)])
        else:
            coefficients = self.in_band.coefficients(gram)
        return coefficients, {"mode": mode, **angle_diagnostics(gram)}

    def _settings(self) -> dict[str, object]:
        return {
            "cost_limit": format_values(self.cost_limit),
            "upper_slack": format_values(self.upper_slack),
            "lower_slack": format_values(self.lower_slack),
            "in_band": repr(self.in_band),
            "anneal_epochs": self.anneal_epochs,
        }
