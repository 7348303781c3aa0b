"""PCGrad on the reward and all cost directions (Yu et al. 2020)."""

from __future__ import annotations

from torch import Tensor

from gradmanip.strategies.base import MODE_BOTH, Strategy
from gradmanip.strategies.combiners import PCGradCombiner
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.gram import (
    Gram,
    angle_diagnostics,
)


class PCGrad(Strategy):
    """PCGrad (Yu et al. 2020, "Gradient Surgery for Multi-Task Learning", Alg. 1) applied to
    the 1 + K objectives, independent of J_c_hat.

    Each direction is projected, in a random order of the others, onto the normal plane of every
    original direction it conflicts with, and the results are summed. The order generator is seeded
    with ``seed`` (state in ``state_dict()``; :meth:`reset` re-seeds). Supports any K.
    """

    name = "pcgrad"
    diagnostic_names = ("mode", "cosine", "conflict")

    def __init__(self, seed: int | None = 0) -> None:
        super().__init__(num_constraints=None)
        self.combiner = PCGradCombiner(seed)

    def reset(self) -> None:
        """Re-seed the order generator."""
        self.combiner.reset()

    def _coefficients(
        self, gram: Gram, episode_cost: Tensor
    ) -> tuple[list[float], dict[str, Value]]:
        coefficients = self.combiner.coefficients(gram)
        diagnostics = {"mode": MODE_BOTH, **angle_diagnostics(gram)}
        return coefficients, diagnostics

    def _settings(self) -> dict[str, object]:
        return {"seed": self.combiner.seed}
