"""Reward and cost advantages with TorchRL's GAE (Schulman et al. 2016, eq. 16).

Two :class:`torchrl.objectives.value.GAE` estimators share one data pass: the reward one with the
default keys (``"advantage"``, ``"value_target"``) and a cost one renamed with ``set_keys`` to
``"cost_advantage"`` / ``"cost_value_target"``. Both critics run once on ``"observation"`` and
``("next", "observation")`` (no grad), then each estimator reads the stored values.

With K constraints the cost, the cost critic's value and hence ``"cost_advantage"`` and
``"cost_value_target"`` are ``[..., K]``: the cost estimator runs once on all K columns (the
episode ends broadcast over them), and each column is normalised on its own, so a constraint of
small scale keeps a direction of the same size as the others.

Episode ends: TorchRL bootstraps from ``V(s_{t+1})`` unless ``terminated``; ``done`` (terminated or
truncated) only cuts the lambda-trace. So a truncated step bootstraps, a terminated one does not,
and the last step of a collection batch (neither) bootstraps as well.
"""

from __future__ import annotations

from typing import Literal

import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn
from torchrl.objectives.value import GAE

# the entries an on-policy update reads from a batch this module has filled
ON_POLICY_KEYS = (
    "observation",
    "action",
    "action_log_prob",
    "advantage",
    "cost_advantage",
    "value_target",
    "cost_value_target",
)

Normalization = Literal["standardize", "center", "none"]
_NORMALIZATIONS = ("standardize", "center", "none")


def _check_unit(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return value


def _check_normalization(name: str, value: str) -> str:
    if value not in _NORMALIZATIONS:
        raise ValueError(f"{name} must be one of {_NORMALIZATIONS}, got {value!r}")
    return value


def normalize_(x: torch.Tensor, how: str, eps: float = 1e-8) -> torch.Tensor:
    """In-place batch normalisation of an advantage tensor: ``standardize`` (zero mean, unit std),
    ``center`` (zero mean only, keeps the scale) or ``none``."""
    if how == "none" or x.numel() < 2:
        return x
    x.sub_(x.mean())
    if how == "standardize":
        x.div_(x.std() + eps)
    return x


def normalize_columns_(x: torch.Tensor, how: str, eps: float = 1e-8) -> torch.Tensor:
    """:func:`normalize_` applied to every last-dimension column of ``x [..., K]`` on its own
    (statistics over all the other dimensions); for K = 1 it is :func:`normalize_`."""
    if how == "none" or x.shape[-1] == 1:
        return normalize_(x, how, eps)
    columns = x.reshape(-1, x.shape[-1])
    if columns.shape[0] < 2:
        return x
    columns.sub_(columns.mean(0))
    if how == "standardize":
        columns.div_(columns.std(0) + eps)
    return x


class SafeAdvantages:
    """Compute reward and cost GAE advantages and value targets on a collected batch.

    Args:
        reward_critic: module ``"observation" -> "state_value"``.
        cost_critic: module ``"observation" -> "cost_value"``.
        gamma, lmbda: discount and GAE lambda of the reward.
        cost_gamma, cost_lmbda: the same for the cost (default: the reward's values).
        reward_normalization, cost_normalization: ``"standardize"``, ``"center"`` or ``"none"``,
            applied to the advantages after the value targets are formed.

    Writes ``"state_value"``, ``"advantage"``, ``"value_target"`` (``[..., 1]``) and
    ``"cost_value"``, ``"cost_advantage"``, ``"cost_value_target"`` (``[..., K]``, one column per
    constraint, each normalised on its own) into the batch (shape ``[*envs, time]``, time last
    or named ``"time"``).
    """

    def __init__(
        self,
        reward_critic: nn.Module,
        cost_critic: nn.Module,
        *,
        gamma: float = 0.99,
        lmbda: float = 0.95,
        cost_gamma: float | None = None,
        cost_lmbda: float | None = None,
        reward_normalization: Normalization = "standardize",
        cost_normalization: Normalization = "standardize",
    ) -> None:
        self.gamma = _check_unit("gamma", gamma)
        self.lmbda = _check_unit("lmbda", lmbda)
        self.cost_gamma = _check_unit("cost_gamma", gamma if cost_gamma is None else cost_gamma)
        self.cost_lmbda = _check_unit("cost_lmbda", lmbda if cost_lmbda is None else cost_lmbda)
        self.reward_normalization = _check_normalization(
            "reward_normalization", reward_normalization
        )
        self.cost_normalization = _check_normalization("cost_normalization", cost_normalization)
        for name, critic in (("reward_critic", reward_critic), ("cost_critic", cost_critic)):
            if not isinstance(getattr(critic, "module", None), nn.Module):
                raise TypeError(
                    f"{name} must be a TensorDictModule (e.g. a ValueOperator) wrapping an "
                    f"nn.Module, got {type(critic).__name__}"
                )
        self.reward_critic = reward_critic
        self.cost_critic = cost_critic
        self.reward_gae = GAE(gamma=self.gamma, lmbda=self.lmbda, value_network=None)
        self.cost_gae = GAE(gamma=self.cost_gamma, lmbda=self.cost_lmbda, value_network=None)
        self.cost_gae.set_keys(
            reward="cost",
            value="cost_value",
            advantage="cost_advantage",
            value_target="cost_value_target",
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(gamma={self.gamma}, lmbda={self.lmbda}, "
            f"cost_gamma={self.cost_gamma}, cost_lmbda={self.cost_lmbda}, "
            f"reward_normalization={self.reward_normalization!r}, "
            f"cost_normalization={self.cost_normalization!r})"
        )

    @torch.no_grad()
    def values(self, batch: TensorDictBase) -> TensorDictBase:
        """Write both critics' values for ``s_t`` and ``s_{t+1}`` (one forward per critic)."""
        for key in ("observation", ("next", "observation"), ("next", "reward"), ("next", "cost")):
            if key not in batch.keys(include_nested=True):
                raise KeyError(f"advantages need {key!r} in the batch; found {list(batch.keys())}")
        obs = batch.get("observation")
        both = torch.stack([obs, batch.get(("next", "observation"))])
        for critic in (self.reward_critic, self.cost_critic):
            out_key = critic.out_keys[0]
            value = critic.module(both)
            batch.set(out_key, value[0])
            batch.set(("next", out_key), value[1])
        return batch

    @torch.no_grad()
    def __call__(self, batch: TensorDictBase) -> TensorDictBase:
        """Fill advantages and value targets into ``batch`` (in place) and return it."""
        if batch.batch_dims < 1:
            raise ValueError(
                "batch must have a time dimension (shape [*envs, time]); "
                f"got batch_size={tuple(batch.batch_size)}"
            )
        self.values(batch)
        self.reward_gae(batch)
        self._cost_gae(batch)
        normalize_(batch.get("advantage"), self.reward_normalization)
        normalize_columns_(batch.get("cost_advantage"), self.cost_normalization)
        return batch

    def _cost_gae(self, batch: TensorDictBase) -> None:
        """Cost GAE on all K columns at once: the estimator needs the episode ends in the
        cost's shape, so it runs on a view whose ``done``/``terminated`` are broadcast to K."""
        cost = batch.get(("next", "cost"))
        value = batch.get("cost_value")
        if value.shape != cost.shape:
            raise ValueError(
                f"the cost critic gives {tuple(value.shape)} values for costs of shape "
                f"{tuple(cost.shape)}: build it with one output per constraint "
                "(make_actor_critic(..., num_costs=K))"
            )
        ends = {
            key: batch.get(("next", key)).expand(cost.shape)
            for key in ("done", "terminated")
            if ("next", key) in batch.keys(include_nested=True)
        }
        view = TensorDict(
            {
                "cost_value": value,
                "next": {"cost": cost, "cost_value": batch.get(("next", "cost_value")), **ends},
            },
            batch_size=batch.batch_size,
            names=batch.names if batch._has_names() else None,
        )
        self.cost_gae(view)
        batch.set("cost_advantage", view.get("cost_advantage"))
        batch.set("cost_value_target", view.get("cost_value_target"))
