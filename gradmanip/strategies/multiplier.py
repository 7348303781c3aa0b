"""What the Lagrangian strategies share: the normalised Lagrangian combination, per-constraint
multipliers sized by their settings or by first use, and their validation.

Both combine ``update = (g_r + sum_k lambda_k g_c[k]) / (1 + sum_k lambda_k)`` (the normalised
Lagrangian of OmniSafe's PPO-Lag / CPPO-PID), one multiplier lambda_k >= 0 per constraint. The
multipliers change only in :meth:`~gradmanip.strategies.base.Strategy.update_state` (once per
epoch); their state lives in buffers, so ``state_dict()`` / ``load_state_dict()`` restore
identical subsequent behaviour.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gradmanip.strategies.base import MODE_BOTH, MODE_REWARD_ONLY, Strategy
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.gram import Gram
from gradmanip.strategies.settings import (
    PerConstraint,
    check_finite,
    check_nonnegative,
    constraint_count,
    cost_limits,
    per_constraint,
)


def constraint_total(count: int | None, num_constraints: int | None) -> int | None:
    """K from the settings (None: scalar settings only, K is fixed by the first use)."""
    if num_constraints is not None and count is not None and num_constraints != count:
        raise ValueError(
            f"num_constraints={num_constraints} but the per-constraint settings have {count} "
            "values; make them agree (or omit num_constraints)"
        )
    return count or num_constraints


def limits_and_initial_multipliers(
    cost_limit: PerConstraint,
    multiplier_init: PerConstraint,
    upper_bound: PerConstraint | None,
    num_constraints: int | None,
    init_rule: str,
) -> tuple[int | None, Tensor, Tensor]:
    """K, the limits b_k and the initial multiplier values, checked (``init_rule``: why the
    initial values must be >= 0, for the error message)."""
    count = constraint_total(
        constraint_count(
            cost_limit=cost_limit, multiplier_init=multiplier_init, upper_bound=upper_bound
        ),
        num_constraints,
    )
    limit = cost_limits(cost_limit, count)
    init = per_constraint(multiplier_init, "multiplier_init", count)
    check_finite(init, "multiplier_init")
    check_nonnegative(init, "multiplier_init", init_rule)
    return count, limit, init


def upper_bounds(upper_bound: PerConstraint | None, count: int | None) -> Tensor:
    if upper_bound is None:
        return torch.full((count or 1,), math.inf, dtype=torch.float64)
    bound = per_constraint(upper_bound, "upper_bound", count)
    check_nonnegative(bound, "upper_bound", "it caps a multiplier that is itself >= 0")
    return bound


class MultiplierStrategy(Strategy):
    """Shared combination, diagnostics and sizing of the Lagrangian strategies.

    With scalar settings only (and no ``num_constraints``), the per-constraint buffers hold one
    entry until the first :meth:`update_state` or combination, which fixes K to the number of
    constraints it sees (every constraint starting from the same settings); the fixed K is saved
    with ``state_dict()``.
    """

    diagnostic_names = ("mode", "lagrange_multiplier", "reward_weight")
    multiplier: Tensor

    def _register_settings(self, limit: Tensor, init: Tensor, bound: Tensor) -> None:
        """The limits, initial multipliers and upper bounds as buffers (not saved: the
        constructor's settings give them)."""
        self.register_buffer("cost_limit", limit, persistent=False)
        self.register_buffer("multiplier_init", init, persistent=False)
        self.register_buffer("upper_bound", bound, persistent=False)

    def _fit_constraints(self, count: int) -> None:
        """Fix K = ``count`` on first use: every per-constraint buffer (last dim) is broadcast."""
        if self._num_constraints is not None:
            return
        for name, buffer in self._buffers.items():
            if buffer is not None and buffer.ndim >= 1 and buffer.shape[-1] == 1:
                self._buffers[name] = buffer.expand(*buffer.shape[:-1], count).clone()
        self._num_constraints = count

    def get_extra_state(self) -> dict[str, int | None]:
        return {"num_constraints": self._num_constraints}

    def set_extra_state(self, state: dict[str, int | None]) -> None:
        """K was already fixed in :meth:`_load_from_state_dict`, before the buffers loaded."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        extra = state_dict.get(prefix + "_extra_state")
        count = extra.get("num_constraints") if isinstance(extra, dict) else None
        if count is not None:
            self._check_count(count, "episode_cost")
            self._fit_constraints(count)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _update_state(self, episode_cost: Tensor) -> None:
        self._fit_constraints(episode_cost.shape[0])
        self._advance(episode_cost)

    def _advance(self, episode_cost: Tensor) -> None:
        raise NotImplementedError

    def _coefficients(
        self, gram: Gram, episode_cost: Tensor
    ) -> tuple[list[float], dict[str, Value]]:
        self._fit_constraints(len(gram) - 1)
        multiplier = self.multiplier.tolist()
        normaliser = 1.0 + sum(multiplier)
        coefficients = [1.0 / normaliser] + [value / normaliser for value in multiplier]
        mode = MODE_REWARD_ONLY if not any(multiplier) else MODE_BOTH
        diagnostics = {
            "mode": mode,
            "lagrange_multiplier": multiplier,
            "reward_weight": coefficients[0],
        }
        return coefficients, diagnostics
