"""Running mean/std observation normalisation with clipping (the paper clips at 5).

Statistics are exact running moments (Chan et al.'s parallel update of count, mean and the sum
of squared deviations) kept in buffers, so ``state_dict()`` saves them and
``load_state_dict()`` shares them between a training and an evaluation environment.
``freeze()`` stops the updates (evaluation), ``unfreeze()`` resumes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from tensordict import TensorDictBase
from torchrl.envs.transforms import Transform


class RunningObsNorm(Transform):
    """obs -> clamp((obs - mean) / (std + eps), -clip, clip), statistics updated on every
    observation seen (reset and step) unless frozen. Before any update mean = 0, std = 1."""

    def __init__(
        self,
        shape: Sequence[int] | torch.Size,
        in_keys: Sequence[str] = ("observation",),
        clip: float = 5.0,
        eps: float = 1e-8,
    ) -> None:
        if not clip > 0:
            raise ValueError(f"clip must be > 0, got {clip!r}.")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}.")
        super().__init__(in_keys=list(in_keys), out_keys=list(in_keys))
        shape = torch.Size(shape)
        self.clip = float(clip)
        self.eps = float(eps)
        self.frozen = False
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("sum_sq_dev", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("std", torch.ones(shape, dtype=torch.float64))

    def freeze(self) -> RunningObsNorm:
        """Stop updating the statistics (for evaluation)."""
        self.frozen = True
        return self

    def unfreeze(self) -> RunningObsNorm:
        """Resume updating the statistics."""
        self.frozen = False
        return self

    def update(self, obs: torch.Tensor) -> None:
        """Merge a batch of observations ``[..., *shape]`` into the running moments."""
        batch = obs.detach().reshape(-1, *self.mean.shape).to(torch.float64)
        n = batch.shape[0]
        if n == 0:
            return
        batch_mean = batch.mean(0)
        batch_sq_dev = ((batch - batch_mean) ** 2).sum(0)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean.add_(delta * (n / total))
        self.sum_sq_dev.add_(batch_sq_dev + delta**2 * (self.count * n / total))
        self.count.copy_(total)
        self.std.copy_((self.sum_sq_dev / self.count).sqrt())

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """Normalise with the current statistics (no update)."""
        mean = self.mean.to(obs.dtype)
        std = self.std.to(obs.dtype)
        return ((obs - mean) / (std + self.eps)).clamp_(-self.clip, self.clip)

    def _apply_transform(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.frozen:
            self.update(obs)
        return self.normalize(obs)

    def _reset(
        self, tensordict: TensorDictBase | None, tensordict_reset: TensorDictBase
    ) -> TensorDictBase:
        reset_mask = None if tensordict is None else tensordict.get("_reset", None)
        for key in self.in_keys:
            obs = tensordict_reset.get(key)
            if not self.frozen:
                fresh = obs if reset_mask is None else obs[reset_mask.reshape(obs.shape[:-1])]
                self.update(fresh)
            tensordict_reset.set(key, self.normalize(obs))
        return tensordict_reset

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(in_keys={self.in_keys}, shape={tuple(self.mean.shape)}, "
            f"clip={self.clip}, eps={self.eps}, frozen={self.frozen}, count={int(self.count)})"
        )


def merge_statistics(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Pool the statistics of several normalisers (e.g. one per collector process) into one
    ``state_dict`` for :class:`RunningObsNorm`, exactly as if one normaliser had seen every
    observation (the parallel-moments formula)."""
    if len(states) == 0:
        raise ValueError("states must hold at least one RunningObsNorm state_dict")
    count = sum(s["count"] for s in states)
    if float(count) == 0:
        return {k: v.clone() for k, v in states[0].items()}
    mean = sum(s["count"] * s["mean"] for s in states) / count
    sum_sq_dev = sum(s["sum_sq_dev"] + s["count"] * (s["mean"] - mean) ** 2 for s in states)
    return {
        "count": count,
        "mean": mean,
        "sum_sq_dev": sum_sq_dev,
        "std": (sum_sq_dev / count).sqrt(),
    }
