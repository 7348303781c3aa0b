"""A combiner used on its own as a strategy: the same rule on the 1 + K directions every epoch,
independent of J_c_hat (MGDA, the TorchJD weightings)."""

from __future__ import annotations

from torch import Tensor

from gradmanip.strategies.base import MODE_BOTH, Strategy
from gradmanip.strategies.combiners import Combiner
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.gram import Gram, angle_diagnostics


class CombinerStrategy(Strategy):
    """Applies ``combiner`` to all 1 + K directions; diagnostics: mode (always both), the
    angles between the directions and the reward's coefficient."""

    diagnostic_names = ("mode", "cosine", "conflict", "reward_weight")

    def __init__(self, combiner: Combiner) -> None:
        super().__init__(num_constraints=None)
        self.combiner = combiner

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
