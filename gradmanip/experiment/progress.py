"""A progress bar over environment steps showing reward, cost, the strategy's mode and, once
the policy has been evaluated during training, its latest deterministic return.

With K > 1 constraints the cost field shows every constraint's episodic cost, in order
(``cost=12.5/140``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TextIO

from tqdm.auto import tqdm

MODES = {0: "both", 1: "reward", 2: "cost"}


class Progress:
    """tqdm bar counted in environment steps; ``update(metrics)`` after every epoch.

    Every line drawn shows the epoch it counts; ``close()`` draws the last state only if no
    update has drawn it yet, so no line is printed twice.
    """

    def __init__(
        self,
        total_steps: int,
        initial: int = 0,
        enabled: bool = True,
        file: TextIO | None = None,
    ) -> None:
        self.bar = tqdm(
            total=total_steps,
            initial=initial,
            unit="step",
            unit_scale=True,
            disable=not enabled,
            dynamic_ncols=True,
            smoothing=0.1,
            file=file,
        )
        self._drawn = True  # tqdm draws the initial state
        self._evaluated: float | None = None  # the latest eval/return

    def update(self, metrics: Mapping[str, float]) -> None:
        """Count the steps up to ``metrics["env_steps"]`` and show this epoch's values."""
        if self.bar.disable:
            return
        evaluated = metrics.get("eval/return")
        if evaluated is not None and math.isfinite(evaluated):
            self._evaluated = evaluated
        self.bar.set_postfix(_postfix(metrics, self._evaluated), refresh=False)  # before update()
        self._drawn = bool(self.bar.update(int(metrics["env_steps"]) - self.bar.n))

    def close(self) -> None:
        """End the bar on its last state."""
        if self._drawn and not self.bar.disable:
            self.bar.display = lambda *args, **kwargs: None  # already on screen: end the line
        self.bar.close()


def _postfix(metrics: Mapping[str, float], evaluated: float | None) -> dict[str, str]:
    post = {
        "return": _short(metrics.get("episode_return")),
        "cost": "/".join(_short(metrics.get(key)) for key in _cost_keys(metrics)),
    }
    if evaluated is not None:
        post["eval"] = _short(evaluated)
    mode = metrics.get("strategy/mode")
    if mode is not None and math.isfinite(mode):
        post["mode"] = MODES.get(int(mode), str(int(mode)))
    return post


def _cost_keys(metrics: Mapping[str, float]) -> list[str]:
    """``episode_cost``, or ``episode_cost_0``, ``episode_cost_1``, ... with several constraints."""
    keys = []
    while f"episode_cost_{len(keys)}" in metrics:
        keys.append(f"episode_cost_{len(keys)}")
    return keys or ["episode_cost"]


def _short(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"
