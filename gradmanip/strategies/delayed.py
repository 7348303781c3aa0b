"""Reward-only warm-up before a strategy takes over ("safety from epoch N").

The PCRPO authors switch safety optimisation on after 40 epochs: until then the policy follows
the reward alone. ``DelayedSafety(strategy, start_epoch)`` wraps any strategy that way: for the
first ``start_epoch`` calls of :meth:`update_state` the update is ``g_r`` (mode 1, reward only)
and the inner strategy's state does not advance; afterwards the inner strategy decides.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gradmanip.strategies.base import MODE_REWARD_ONLY, Strategy
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.gram import Gram


class DelayedSafety(Strategy):
    """Follow ``g_r`` for ``start_epoch`` epochs, then ``strategy``.

    Diagnostics are the inner strategy's (so logs keep the same columns), with ``mode`` forced
    to reward-only during the warm-up, plus ``safety_active`` (0 or 1).
    """

    name = "delayed_safety"

    def __init__(self, strategy: Strategy, start_epoch: int = 40) -> None:
        if not isinstance(strategy, Strategy):
            raise TypeError(f"strategy must be a Strategy, got {type(strategy).__name__}")
        if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or start_epoch < 0:
            raise ValueError(f"start_epoch must be an integer >= 0, got {start_epoch!r}")
        self.diagnostic_names = (*strategy.diagnostic_names, "safety_active")
        super().__init__(num_constraints=strategy.num_constraints)
        self.strategy = strategy
        self.start_epoch = start_epoch
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.int64))

    @property
    def safety_active(self) -> bool:
        """Whether the warm-up is over (the inner strategy decides the update)."""
        return self.start_epoch == 0 or int(self.epochs_seen) > self.start_epoch

    def _update_state(self, episode_cost: Tensor) -> None:
        self.epochs_seen += 1
        if self.safety_active:
            self.strategy.update_state(episode_cost)

    @property
    def positively_homogeneous(self) -> bool:  # type: ignore[override]
        return self.strategy.positively_homogeneous

    @property
    def is_linear(self) -> bool:
        """Linear exactly when the inner strategy is (the warm-up update g_r is linear)."""
        return self.strategy.is_linear

    def _coefficients(
        self, gram: Gram, episode_cost: Tensor
    ) -> tuple[list[float], dict[str, Value]]:
        coefficients, diagnostics = self.strategy._coefficients(gram, episode_cost)
        active = self.safety_active
        diagnostics["safety_active"] = int(active)
        if not active:
            coefficients = [1.0] + [0.0] * (len(gram) - 1)
            if "mode" in diagnostics:
                diagnostics["mode"] = MODE_REWARD_ONLY
        return coefficients, diagnostics

    def _aggregate(
        self, g_r: Tensor, g_c: Tensor, episode_cost: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if self.is_linear:
            return super()._aggregate(g_r, g_c, episode_cost)
        update, diagnostics = self.strategy._aggregate(g_r, g_c, episode_cost)
        active = self.safety_active
        diagnostics["safety_active"] = torch.tensor(int(active), device=g_r.device)
        if not active:
            update = g_r.clone()
            if "mode" in diagnostics:
                diagnostics["mode"] = torch.full_like(diagnostics["mode"], MODE_REWARD_ONLY)
        return update, diagnostics

    def reset(self) -> None:
        self.epochs_seen.zero_()
        self.strategy.reset()

    def _settings(self) -> dict[str, object]:
        return {"strategy": repr(self.strategy), "start_epoch": self.start_epoch}
