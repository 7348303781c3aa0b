"""Episode statistics that stay correct across collection batches and environments.

A collection batch has shape ``[*envs, time]`` (time last, as TorchRL collectors emit it). An
episode may start in one batch and finish in a later one, so the tracker carries each
environment's partial return, cost and length over to the next batch.

``episode_cost`` is the estimate J_c_hat that the switching rules read (PCRPO, Gu et al. 2024,
Sec. 4): the mean episodic cost over the episodes that finished in the latest batch (the paper's
estimate), or with ``cost_window=W`` over the last W episodes that finished, in this batch or
earlier ones (a steadier estimate when a batch holds few episodes); when none finished yet, the
previous estimate is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase

from gradmanip.rl.metric_names import constraint_columns


@dataclass(frozen=True)
class EpisodeStats:
    """The episodes that finished in one batch: ``returns [M]``, ``costs [M, K]``,
    ``lengths [M]`` (M may be 0), plus the running estimate ``episode_cost [K]`` (J_c_hat;
    ``windowed``: it averages a window of episodes, not only this batch's)."""

    returns: torch.Tensor
    costs: torch.Tensor
    lengths: torch.Tensor
    episode_cost: torch.Tensor
    windowed: bool = False

    @property
    def num_episodes(self) -> int:
        return int(self.returns.numel())

    def summary(self) -> dict[str, float]:
        """Scalar metrics; return/length means are NaN when no episode finished. The batch's
        mean episodic cost (the estimate when no episode finished) is ``episode_cost`` for one
        constraint; with K > 1, ``episode_cost_k`` per constraint and ``episode_cost`` their sum
        (see :mod:`gradmanip.rl.metric_names`). A windowed estimate is also ``cost_estimate``."""
        nan = float("nan")
        out = {
            "episodes": float(self.num_episodes),
            "episode_return": self.returns.mean().item() if self.num_episodes else nan,
            "episode_length": self.lengths.float().mean().item() if self.num_episodes else nan,
        }
        cost = self.costs.mean(dim=0) if self.windowed and self.num_episodes else self.episode_cost
        out.update(constraint_columns("episode_cost", cost.tolist(), total=True))
        if self.windowed:
            out.update(constraint_columns("cost_estimate", self.episode_cost.tolist(), total=True))
        return out


def _episode_sums(
    values: torch.Tensor, done: torch.Tensor, carry: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-episode sums of ``values [E, T, *F]`` cut at ``done [E, T]``, with ``carry [E, *F]`` the
    partial sums from earlier batches. Returns (sums of finished episodes [M, *F] in
    (env, time) order, new carry [E, *F])."""
    cum = carry.unsqueeze(1) + values.cumsum(dim=1)
    env_idx, time_idx = done.nonzero(as_tuple=True)
    at_done = cum[env_idx, time_idx]
    previous = torch.zeros_like(at_done)
    if at_done.shape[0] > 1:
        same_env = env_idx[1:] == env_idx[:-1]
        mask = same_env.view(-1, *([1] * (at_done.dim() - 1)))
        previous[1:] = torch.where(mask, at_done[:-1], torch.zeros_like(at_done[:-1]))
    last_done = torch.zeros_like(carry)
    last_done[env_idx] = at_done  # later writes (later times) win: indices are sorted
    has_done = torch.zeros(done.shape[0], dtype=torch.bool)
    has_done[env_idx] = True
    new_carry = cum[:, -1] - torch.where(
        has_done.view(-1, *([1] * (carry.dim() - 1))), last_done, torch.zeros_like(carry)
    )
    return at_done - previous, new_carry


class EpisodeTracker:
    """Accumulate returns, costs and lengths per environment across batches.

    Args:
        num_constraints: K, the width of ``("next", "cost")`` (its last dim).
        initial_episode_cost: the estimate before any episode has finished.
        carry_over: add partial episodes at the end of a batch to the next batch's steps (the
            environments continue across batches). Pass ``False`` when every batch starts fresh
            episodes (``make_collector(..., reset_each_epoch=True)``): partial episodes are then
            dropped, so the estimate only averages whole episodes.
        cost_window: ``None``: J_c_hat averages the episodes that finished in the latest batch;
            an integer W >= 1: the last W finished episodes, across batches.
        reward_key, cost_key, done_key: keys under ``"next"``.
    """

    def __init__(
        self,
        num_constraints: int = 1,
        initial_episode_cost: float = 0.0,
        *,
        carry_over: bool = True,
        cost_window: int | None = None,
        reward_key: str = "reward",
        cost_key: str = "cost",
        done_key: str = "done",
    ) -> None:
        if int(num_constraints) < 1:
            raise ValueError(f"num_constraints must be >= 1, got {num_constraints}")
        if cost_window is not None and (
            isinstance(cost_window, bool) or not isinstance(cost_window, int) or cost_window < 1
        ):
            raise ValueError(
                f"cost_window must be None (the latest batch's episodes) or an integer >= 1, "
                f"got {cost_window!r}"
            )
        self.cost_window = cost_window
        self.num_constraints = int(num_constraints)
        self.initial_episode_cost = float(initial_episode_cost)
        self.carry_over = bool(carry_over)
        self.keys = {"reward": reward_key, "cost": cost_key, "done": done_key}
        self.reset()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_constraints={self.num_constraints}, "
            f"initial_episode_cost={self.initial_episode_cost}, carry_over={self.carry_over}, "
            f"cost_window={self.cost_window}, "
            f"keys={self.keys})"
        )

    def reset(self) -> None:
        """Forget partial episodes, the window and the estimate."""
        self.episode_cost = torch.full(
            (self.num_constraints,), self.initial_episode_cost, dtype=torch.float64
        )
        self._carry: dict[str, torch.Tensor] | None = None
        self._recent = torch.zeros(0, self.num_constraints, dtype=torch.float64)

    def _flat(self, batch: TensorDictBase, key: str, feature_dims: int) -> torch.Tensor:
        full_key = ("next", self.keys[key])
        if full_key not in batch.keys(include_nested=True):
            raise KeyError(f"episode statistics need {full_key!r} in the batch")
        value = batch.get(full_key)
        time = batch.batch_size[-1]
        return value.reshape(-1, time, *value.shape[value.dim() - feature_dims :])

    @torch.no_grad()
    def update(self, batch: TensorDictBase) -> EpisodeStats:
        """Consume one batch ``[*envs, time]``; return the episodes it finished."""
        if batch.batch_dims < 1:
            raise ValueError("batch must have a time dimension (shape [*envs, time])")
        reward = self._flat(batch, "reward", 1).squeeze(-1).double()
        cost = self._flat(batch, "cost", 1).double()
        done = self._flat(batch, "done", 1).squeeze(-1).bool()
        if cost.shape[-1] != self.num_constraints:
            raise ValueError(
                f"cost has {cost.shape[-1]} constraint(s) but the tracker was built with "
                f"num_constraints={self.num_constraints}"
            )
        num_envs = reward.shape[0]
        if not self.carry_over:
            self._carry = None
        if self._carry is None or self._carry["reward"].shape[0] != num_envs:
            self._carry = {
                "reward": torch.zeros(num_envs, dtype=torch.float64),
                "cost": torch.zeros(num_envs, self.num_constraints, dtype=torch.float64),
                "length": torch.zeros(num_envs, dtype=torch.float64),
            }
        returns, self._carry["reward"] = _episode_sums(reward, done, self._carry["reward"])
        costs, self._carry["cost"] = _episode_sums(cost, done, self._carry["cost"])
        lengths, self._carry["length"] = _episode_sums(
            torch.ones_like(reward), done, self._carry["length"]
        )
        if costs.shape[0] > 0:
            if self.cost_window is not None:
                costs_so_far = torch.cat([self._recent, costs])
                self._recent = costs_so_far[-self.cost_window :].clone()
                self.episode_cost = self._recent.mean(dim=0)
            else:
                self.episode_cost = costs.mean(dim=0)
        return EpisodeStats(
            returns=returns,
            costs=costs,
            lengths=lengths.round().long(),
            episode_cost=self.episode_cost.clone(),
            windowed=self.cost_window is not None,
        )

    def state_dict(self) -> dict:
        return {
            "episode_cost": self.episode_cost.clone(),
            "recent_costs": self._recent.clone(),
            "carry": None
            if self._carry is None
            else {k: v.clone() for k, v in self._carry.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.episode_cost = state["episode_cost"].clone().to(torch.float64)
        recent = state.get("recent_costs")  # absent from checkpoints without a window
        self._recent = (
            torch.zeros(0, self.num_constraints, dtype=torch.float64)
            if recent is None
            else recent.clone().to(torch.float64)
        )
        carry = state["carry"]
        self._carry = None if carry is None else {k: v.clone() for k, v in carry.items()}
