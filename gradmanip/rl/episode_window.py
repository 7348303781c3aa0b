"""Episode statistics over a window of recent episodes (the off-policy J_c_hat).

Off-policy training has no batch of fresh episodes per update: as OmniSafe does, the estimate
J_c_hat that the strategies read is the mean episodic cost over the last ``window`` finished
episodes (before the first one, ``initial_episode_cost``).
"""

from __future__ import annotations

from collections import deque

import torch

from gradmanip.rl.metric_names import constraint_columns


class EpisodeWindow:
    """The last ``window`` episodes' returns, costs [K] and lengths."""

    def __init__(
        self, window: int = 10, num_constraints: int = 1, initial_episode_cost: float = 0.0
    ) -> None:
        for name, value in (("window", window), ("num_constraints", num_constraints)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.window = window
        self.num_constraints = num_constraints
        self.initial_episode_cost = float(initial_episode_cost)
        self.episodes: deque[tuple[float, list[float], int]] = deque(maxlen=window)

    def __repr__(self) -> str:
        return (
            f"EpisodeWindow(window={self.window}, num_constraints={self.num_constraints}, "
            f"initial_episode_cost={self.initial_episode_cost})"
        )

    def add(self, episode_return: float, episode_cost: list[float], length: int) -> None:
        if len(episode_cost) != self.num_constraints:
            raise ValueError(
                f"episode_cost has {len(episode_cost)} entries, expected {self.num_constraints}"
            )
        self.episodes.append((float(episode_return), [float(c) for c in episode_cost], int(length)))

    @property
    def episode_cost(self) -> torch.Tensor:
        """J_c_hat [K] (float64): the window's mean episodic cost."""
        if not self.episodes:
            return torch.full(
                (self.num_constraints,), self.initial_episode_cost, dtype=torch.float64
            )
        costs = torch.tensor([cost for _, cost, _ in self.episodes], dtype=torch.float64)
        return costs.mean(0)

    def summary(self) -> dict[str, float]:
        """Window means of return, cost and length (NaN when empty); with K > 1 constraints
        ``episode_cost_k`` per constraint and ``episode_cost`` their sum (see
        :mod:`gradmanip.rl.metric_names`)."""
        nan = float("nan")
        returns = [r for r, _, _ in self.episodes]
        lengths = [n for _, _, n in self.episodes]
        out = {
            "episode_return": sum(returns) / len(returns) if returns else nan,
            "episode_length": sum(lengths) / len(lengths) if lengths else nan,
        }
        out.update(constraint_columns("episode_cost", self.episode_cost.tolist(), total=True))
        return out

    def state_dict(self) -> dict:
        return {"episodes": list(self.episodes)}

    def load_state_dict(self, state: dict) -> None:
        self.episodes = deque(state["episodes"], maxlen=self.window)
