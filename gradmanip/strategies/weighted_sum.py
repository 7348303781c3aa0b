"""Fixed-weight combinations: weighted sum and its special case, reward only."""

from __future__ import annotations

from torch import Tensor

from gradmanip.strategies.base import MODE_BOTH, MODE_REWARD_ONLY, Strategy
from gradmanip.strategies.combiners import WeightedSumCombiner
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.gram import Gram
from gradmanip.strategies.settings import PerConstraint, check_bool


class WeightedSum(Strategy):
    """Fixed linear scalarisation: ``update = x_r g_r + sum_k x_c[k] g_c[k]``.

    The weighted-sum baseline of multi-objective RL (e.g. the scalarised objective behind the
    Lagrangian with a frozen multiplier). Weights must be >= 0; with ``require_sum_to_one`` (the
    default) they must form a convex combination, x_r + sum_k x_c[k] = 1. A scalar
    ``cost_weight`` is the constraints' total weight, shared equally (x_c / K each), so it
    supports any K; a sequence gives one weight per constraint and fixes K.
    """

    name = "weighted_sum"
    diagnostic_names = ("mode", "reward_weight")

    def __init__(
        self,
        reward_weight: float = 0.5,
        cost_weight: PerConstraint = 0.5,
        require_sum_to_one: bool = True,
    ) -> None:
        combiner = WeightedSumCombiner(reward_weight, cost_weight)
        count = combiner.num_constraints
        if check_bool(require_sum_to_one, "require_sum_to_one"):
            total = combiner.reward_weight + sum(combiner.cost_weight)
            if abs(total - 1.0) > 1e-6:
                raise ValueError(
                    f"reward_weight + sum(cost_weight) must be 1, got {total:g}; rescale "
                    "the weights or pass require_sum_to_one=False"
                )
        super().__init__(num_constraints=count)
        self.combiner = combiner
        self.require_sum_to_one = require_sum_to_one

    def _coefficients(
        self, gram: Gram, episode_cost: Tensor
    ) -> tuple[list[float], dict[str, Value]]:
        weights = self.combiner.weights(len(gram))
        mode = MODE_REWARD_ONLY if not any(weights[1:]) else MODE_BOTH
        diagnostics = {
            "mode": mode,
            "reward_weight": weights[0],
        }
        return weights, diagnostics

    def _settings(self) -> dict[str, object]:
        settings = self.combiner._settings()
        settings["require_sum_to_one"] = self.require_sum_to_one
        return settings


class RewardOnly(WeightedSum):
    """Unconstrained baseline: ``update = g_r`` (weighted sum with x_r = 1, x_c = 0); any K."""

    name = "reward_only"

    def __init__(self) -> None:
        super().__init__(reward_weight=1.0, cost_weight=0.0)

    def _settings(self) -> dict[str, object]:
        return {}
