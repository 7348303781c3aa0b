"""A progress bar over environment steps showing reward, cost and the strategy's mode."""

from __future__ import annotations

import math
from collections.abc import Mapping

from tqdm.auto import tqdm

MODES = {0: "both", 1: "reward", 2: "cost"}


class Progress:
    """tqdm bar counted in environment steps; ``update(metrics)`` after every epoch."""

    def __init__(self, total_steps: int, initial: int = 0, enabled: bool = True) -> None:
        self.bar = tqdm(
            total=total_steps,
            initial=initial,
            unit="step",
            unit_scale=True,
            disable=not enabled,
            dynamic_ncols=True,
            smoothing=0.1,
        )
        self._seen = initial

    def update(self, metrics: Mapping[str, float]) -> None:
        steps = int(metrics["env_steps"])
        self.bar.update(steps - self._seen)
        self._seen = steps
        post = {
            "return": _short(metrics.get("episode_return")),
            "cost": _short(metrics.get("episode_cost")),
        }
        mode = metrics.get("strategy/mode")
        if mode is not None and math.isfinite(mode):
            post["mode"] = MODES.get(int(mode), str(int(mode)))
        self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        self.bar.close()


def _short(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"
