"""What one :meth:`gradmanip.driver.gradient_driver.GradientDriver.step` gives back.

The [P]-sized parts (the flat directions, the update) are built only when read: on the driver's
fast path nothing of size P is made beyond the gradients autograd returns, and a caller that only
logs diagnostics or the update's norm never pays for them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from gradmanip.strategies.diagnostics import Value, as_tensors
from gradmanip.strategies.gram import Gram


def update_norm(gram: Gram, coefficients: Sequence[float]) -> float:
    """|sum_i c_i d_i| from the Gram matrix: sqrt(c^T G c)."""
    squared = sum(
        ci * cj * gram[i][j]
        for i, ci in enumerate(coefficients)
        for j, cj in enumerate(coefficients)
    )
    return math.sqrt(max(squared, 0.0))


def clip_factor(norm: float, max_norm: float) -> float:
    """Scale that brings an update of norm ``norm`` to at most ``max_norm`` (the
    ``clip_grad_norm_`` rule: ``min(1, max_norm / (norm + 1e-6))``)."""
    return min(1.0, max_norm / (norm + 1e-6))


class StepResult:
    """Outcome of :meth:`GradientDriver.step`.

    - ``diagnostics``: the strategy's diagnostics as tensors (built on first access);
      ``diagnostic_values`` gives them as the strategy returned them (Python values from the
      coefficient path of linear strategies, cheaper to log).
    - ``skipped``: True when a non-finite value was found with ``on_nonfinite="skip"`` (``.grad``
      untouched); ``nonfinite`` then names the objectives affected.
    - ``coefficients``: for linear strategies, the update is ``clip_factor * sum_i c_i d_i``
      over d = (g_r, g_c[0], ...); None otherwise.
    - ``clip_factor``: the scaling applied by ``max_norm`` (1.0 when the update was not clipped).
    - ``update`` [P]: the improvement direction applied (``.grad`` holds ``-update``; None when
      skipped). ``reward_direction`` [P] and ``cost_direction`` [K, P]: the directions. These
      three are built on first access, from gradients the result owns (later steps do not
      change them).
    - ``update_norm``: the norm of ``update``, from the Gram matrix without building ``update``.
    """

    def __init__(
        self,
        diagnostics: Mapping[str, Value | Tensor],
        directions: Callable[[], Tensor] | Tensor,
        *,
        update: Callable[[], Tensor] | Tensor | None = None,
        coefficients: list[float] | None = None,
        clip_factor: float = 1.0,
        norm: Callable[[], float] | float | None = None,
        skipped: bool = False,
        nonfinite: Sequence[str] = (),
        device: torch.device | None = None,
    ) -> None:
        self.diagnostic_values = diagnostics
        self._diagnostics: dict[str, Tensor] | None = None
        self._device = device
        self.coefficients = coefficients
        self.clip_factor = clip_factor
        self.skipped = skipped
        self.nonfinite = list(nonfinite)
        self._directions: Callable[[], Tensor] | Tensor = directions
        self._update = update
        self._norm = norm

    @property
    def diagnostics(self) -> dict[str, Tensor]:
        if self._diagnostics is None:
            self._diagnostics = as_tensors(self.diagnostic_values, self._device)
        return self._diagnostics

    @property
    def directions(self) -> Tensor:
        """[1 + K, P]: g_r, then g_c[0..K-1]."""
        if callable(self._directions):
            self._directions = self._directions()
        return self._directions

    @property
    def reward_direction(self) -> Tensor:
        return self.directions[0]

    @property
    def cost_direction(self) -> Tensor:
        return self.directions[1:]

    @property
    def update(self) -> Tensor | None:
        if callable(self._update):
            self._update = self._update()
        return self._update

    @property
    def update_norm(self) -> float | None:
        if callable(self._norm):
            self._norm = self._norm()
        elif self._norm is None and self.update is not None:
            self._norm = float(self.update.norm())
        return self._norm

    def __repr__(self) -> str:
        return (
            f"StepResult(skipped={self.skipped}, coefficients={self.coefficients}, "
            f"clip_factor={self.clip_factor}, diagnostics={sorted(self.diagnostic_values)})"
        )
