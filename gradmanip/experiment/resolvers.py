"""Config interpolations of the recipes (OmegaConf resolvers).

- ``${ceil_div:a,b}``: ``ceil(a / b)`` for integers, e.g. the number of epochs of a run,
  ``${ceil_div:${total_steps},${steps_per_epoch}}`` (the PPO learning-rate schedule's length).
"""

from __future__ import annotations

from omegaconf import OmegaConf


def ceil_div(numerator: int | float, denominator: int | float) -> int:
    """``ceil(numerator / denominator)`` of two whole numbers (``1e6`` counts as whole)."""
    return -(-int(numerator) // int(denominator))


def register_resolvers() -> None:
    """Register the recipes' resolvers once (before Hydra composes a configuration)."""
    if not OmegaConf.has_resolver("ceil_div"):
        OmegaConf.register_new_resolver("ceil_div", ceil_div)
