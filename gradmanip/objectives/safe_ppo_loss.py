"""PPO's clipped surrogates, one per objective, as a TorchRL loss module.

With ``rho = pi(a|s) / pi_old(a|s)`` (Schulman et al. 2017, eq. 7), the reward surrogate to
maximise and, per constraint k, the pessimistic cost surrogate to minimise are

    L_r    = E[min(rho A_r, clip(rho, 1 - eps, 1 + eps) A_r)]
    L_c[k] = E[max(rho A_c[k], clip(rho, 1 - eps, 1 + eps) A_c[k])]

``clip_epsilon=None`` drops the clipping (the plain importance-weighted surrogates of the
natural-gradient base).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import ProbabilisticTensorDictSequential, TensorDictModule
from tensordict.utils import NestedKey
from torch import Tensor
from torchrl.objectives import LossModule


def clipped_surrogates(
    ratio: Tensor, advantage: Tensor, cost_advantage: Tensor, clip_epsilon: float | None
) -> tuple[Tensor, Tensor]:
    """(reward surrogate to maximise, cost surrogates [K] to minimise) from ``ratio [B]``,
    ``advantage [B]`` and ``cost_advantage [B, K]``; both pessimistic (clipped) bounds."""
    if clip_epsilon is None:
        return (ratio * advantage).mean(), (ratio.unsqueeze(-1) * cost_advantage).mean(0)
    clipped = ratio.clamp(1.0 - clip_epsilon, 1.0 + clip_epsilon)
    reward = torch.min(ratio * advantage, clipped * advantage).mean()
    ratio_k, clipped_k = ratio.unsqueeze(-1), clipped.unsqueeze(-1)
    cost = torch.max(ratio_k * cost_advantage, clipped_k * cost_advantage).mean(0)
    return reward, cost


class SafePPOLoss(LossModule):
    """Per-objective PPO losses of a safe policy, for a gradient driver to combine.

    Reads a batch with the advantages already computed (e.g. by
    :class:`gradmanip.rl.advantages.SafeAdvantages`) and writes, as TorchRL losses do:

    - ``loss_objective``: ``-L_r`` (the reward objective);
    - ``loss_cost_objective`` [K]: ``+L_c[k]``, one per constraint;
    - ``loss_entropy``: ``-entropy_coeff * H`` (part of the reward objective: the entropy bonus
      is projected with it in band and dropped in cost-only mode);
    - ``loss_critic``: ``critic_coeff`` times the sum of the reward and cost critics' mean
      squared errors against their value targets, also reported alone as ``value_error`` and
      ``cost_value_error`` (when critics are given);
    - diagnostics ``entropy``, ``kl_approx`` (mean of ``log pi_old - log pi``), ``clip_fraction``.

    Summing every ``loss_*`` gives the fixed-weight sum of the objectives; a
    :class:`~gradmanip.driver.GradientDriver` instead combines the reward and cost entries
    with a strategy (:meth:`~gradmanip.driver.GradientDriver.backward`). Keys are set with
    :meth:`set_keys` (``advantage``, ``cost_advantage``, ``value_target``, ``cost_value_target``,
    ``value``, ``cost_value``, ``sample_log_prob``, ``action``).

    Args:
        actor_network: a probabilistic actor (``get_dist(tensordict)``), e.g. from
            :func:`gradmanip.rl.models.make_actor`.
        reward_critic, cost_critic: value modules writing ``value`` / ``cost_value`` (optional;
            both or neither).
        clip_epsilon: the ratio clip (``None``: unclipped surrogates).
        entropy_coeff: weight of the entropy bonus.
        critic_coeff: weight of the critics' loss.
    """

    @dataclass
    class _AcceptedKeys:
        advantage: NestedKey = "advantage"
        cost_advantage: NestedKey = "cost_advantage"
        value_target: NestedKey = "value_target"
        cost_value_target: NestedKey = "cost_value_target"
        value: NestedKey = "state_value"
        cost_value: NestedKey = "cost_value"
        sample_log_prob: NestedKey = "action_log_prob"
        action: NestedKey = "action"

    default_keys = _AcceptedKeys
    tensor_keys: _AcceptedKeys

    def __init__(
        self,
        actor_network: ProbabilisticTensorDictSequential,
        reward_critic: TensorDictModule | None = None,
        cost_critic: TensorDictModule | None = None,
        *,
        clip_epsilon: float | None = 0.2,
        entropy_coeff: float = 0.0,
        critic_coeff: float = 1.0,
    ) -> None:
        if not callable(getattr(actor_network, "get_dist", None)):
            raise TypeError(
                "actor_network must be a probabilistic actor with get_dist(tensordict) (e.g. "
                f"torchrl.modules.ProbabilisticActor), got {type(actor_network).__name__}"
            )
        if (reward_critic is None) != (cost_critic is None):
            raise ValueError("give both reward_critic and cost_critic, or neither")
        if clip_epsilon is not None and not clip_epsilon > 0:
            raise ValueError(f"clip_epsilon must be > 0 or None, got {clip_epsilon}")
        for name, value in (("entropy_coeff", entropy_coeff), ("critic_coeff", critic_coeff)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        super().__init__()
        self.actor_network = actor_network
        self.reward_critic = reward_critic
        self.cost_critic = cost_critic
        self.clip_epsilon = clip_epsilon
        self.entropy_coeff = float(entropy_coeff)
        self.critic_coeff = float(critic_coeff)

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        """Advantages come computed in the batch: no value estimator to rename."""

    @property
    def in_keys(self) -> list[NestedKey]:
        keys = self.tensor_keys
        needed = [keys.action, keys.sample_log_prob, keys.advantage, keys.cost_advantage]
        needed += list(self.actor_network.in_keys)
        if self.reward_critic is not None:
            needed += [keys.value_target, keys.cost_value_target]
        return list(dict.fromkeys(needed))

    @property
    def out_keys(self) -> list[NestedKey]:
        keys = ["loss_objective", "loss_cost_objective", "loss_entropy"]
        if self.reward_critic is not None:
            keys += ["loss_critic", "value_error", "cost_value_error"]
        return keys + ["entropy", "kl_approx", "clip_fraction"]

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        keys = self.tensor_keys
        dist = self.actor_network.get_dist(tensordict)
        log_prob = dist.log_prob(tensordict.get(keys.action))
        log_ratio = log_prob - tensordict.get(keys.sample_log_prob).reshape(log_prob.shape)
        ratio = log_ratio.exp()
        batch = log_prob.shape[0]
        advantage = tensordict.get(keys.advantage).reshape(batch)
        cost_advantage = tensordict.get(keys.cost_advantage).reshape(batch, -1)
        reward, cost = clipped_surrogates(ratio, advantage, cost_advantage, self.clip_epsilon)
        entropy = dist.entropy().mean()
        out = TensorDict(
            {
                "loss_objective": -reward,
                "loss_cost_objective": cost,
                "loss_entropy": -self.entropy_coeff * entropy,
                "entropy": entropy.detach(),
                "kl_approx": (-log_ratio).mean().detach(),
                "clip_fraction": self._clip_fraction(ratio),
            }
        )
        if self.reward_critic is not None:
            value_error, cost_value_error = self._critic_errors(tensordict, batch)
            out.set("loss_critic", self.critic_coeff * (value_error + cost_value_error))
            out.set("value_error", value_error.detach())
            out.set("cost_value_error", cost_value_error.detach())
        return out

    def _clip_fraction(self, ratio: Tensor) -> Tensor:
        if self.clip_epsilon is None:
            return ratio.new_zeros(())
        outside = (ratio - 1.0).abs() > self.clip_epsilon
        return outside.to(ratio.dtype).mean().detach()

    def _critic_errors(self, tensordict: TensorDictBase, batch: int) -> tuple[Tensor, Tensor]:
        """Mean squared errors of the reward and cost critics against their value targets."""
        keys = self.tensor_keys
        value = self.reward_critic(tensordict.select(*self.reward_critic.in_keys).copy())
        cost_value = self.cost_critic(tensordict.select(*self.cost_critic.in_keys).copy())
        reward_target = tensordict.get(keys.value_target).reshape(batch)
        cost_target = tensordict.get(keys.cost_value_target).reshape(batch, -1)
        reward_error = value.get(keys.value).reshape(batch) - reward_target
        cost_error = cost_value.get(keys.cost_value).reshape(batch, -1) - cost_target
        return reward_error.square().mean(), cost_error.square().mean()
