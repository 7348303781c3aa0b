"""Critic regression of the natural-gradient base: both critics fitted on their value targets."""

from __future__ import annotations

import torch
from torch import Tensor

from gradmanip.rl.models import ActorCritic


class CriticRegression:
    """Regress the reward and cost critics on their value targets: MSE + ``l2 * |phi|^2`` (the L2
    penalty of the PCRPO authors' code), ``epochs`` passes of Adam minibatches of ``batch_size``
    shuffled by ``generator``.

    ``optimizer`` (Adam over both critics) and ``generator`` carry the state that a checkpoint
    saves; their owner saves and restores them.
    """

    def __init__(
        self,
        actor_critic: ActorCritic,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        l2: float,
        generator: torch.Generator,
    ) -> None:
        self.reward_net = actor_critic.reward_critic.module
        self.cost_net = actor_critic.cost_critic.module
        self.epochs = epochs
        self.batch_size = batch_size
        self.generator = generator
        # Adam's weight_decay adds wd * phi to the gradient: the gradient of (wd / 2) |phi|^2.
        self.optimizer = torch.optim.Adam(
            actor_critic.critics().parameters(), lr=lr, weight_decay=2 * l2
        )

    def fit(self, obs: Tensor, reward_target: Tensor, cost_target: Tensor) -> dict[str, float]:
        """Fit both critics; the losses before (``loss/value_before``, ``loss/cost_value_before``)
        and after fitting (``loss/value``, ``loss/cost_value``)."""
        reward_net, cost_net = self.reward_net, self.cost_net
        cost_target = cost_target.reshape(len(obs), -1)
        metrics = self.losses(obs, reward_target, cost_target, "_before")
        n = len(obs)
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=self.generator)
            for idx in order.split(self.batch_size):
                o = obs[idx]
                loss = (reward_net(o).reshape(-1) - reward_target[idx]).square().mean()
                loss = loss + (cost_net(o).reshape(len(idx), -1) - cost_target[idx]).square().mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
        metrics.update(self.losses(obs, reward_target, cost_target, ""))
        return metrics

    def losses(
        self, obs: Tensor, reward_target: Tensor, cost_target: Tensor, suffix: str
    ) -> dict[str, float]:
        """The mean squared errors of both critics, as ``loss/value{suffix}`` and
        ``loss/cost_value{suffix}``."""
        with torch.no_grad():
            reward_loss = (self.reward_net(obs).reshape(-1) - reward_target).square().mean()
            cost_loss = (self.cost_net(obs).reshape(len(obs), -1) - cost_target).square().mean()
        return {
            f"loss/value{suffix}": float(reward_loss),
            f"loss/cost_value{suffix}": float(cost_loss),
        }
