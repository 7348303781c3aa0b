"""Per-objective actor losses from any TorchRL actor loss (``ClipPPOLoss``, ``KLPENPPOLoss``,
``A2CLoss``, ...): one instance for the reward, one per constraint with the sign flipped.

A TorchRL actor loss maximises its advantage. Pointed at ``-A_c[k]`` (the negated k-th cost
advantage), its ``loss_objective`` is a loss whose minimisation lowers the k-th cost: for
``ClipPPOLoss``, ``-min(rho (-A_c), clip(rho) (-A_c)) = max(rho A_c, clip(rho) A_c)``, PPO's
pessimistic cost surrogate. :class:`PerObjectiveLoss` runs the reward loss on the batch and each
cost loss on a shallow copy holding its negated advantage column, and writes the entries a
:class:`~gradmanip.driver.GradientDriver` combines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torchrl.objectives import LossModule


def negated_cost_key(k: int) -> str:
    """Batch key of the negated k-th cost advantage that the k-th cost loss reads."""
    return f"negated_cost_advantage_{k}"


class PerObjectiveLoss(TensorDictModuleBase):
    """The reward loss and K cost losses of one actor, as one TensorDict module.

    Output: the reward loss's own entries (``loss_objective``, ``loss_entropy``, diagnostics)
    plus ``loss_cost_objective`` [K] (each cost loss's ``loss_objective``). The cost losses'
    other entries (entropy, critic) are not used: the entropy bonus belongs to the reward
    objective, and critics are trained by their own loss.

    Args:
        reward_loss: a TorchRL actor loss reading the reward advantage.
        cost_losses: one TorchRL actor loss per constraint, each reading the advantage key
            ``negated_cost_key(k)`` (see :meth:`from_loss`).
        cost_advantage_key: where the batch holds the cost advantages [..., K].
    """

    def __init__(
        self,
        reward_loss: LossModule,
        cost_losses: Sequence[LossModule],
        cost_advantage_key: NestedKey = "cost_advantage",
    ) -> None:
        super().__init__()
        if not cost_losses:
            raise ValueError("cost_losses is empty: give one loss per constraint")
        self.reward_loss = reward_loss
        self.cost_losses = torch.nn.ModuleList(cost_losses)
        self.cost_advantage_key = cost_advantage_key
        self.in_keys = list(dict.fromkeys([*reward_loss.in_keys, cost_advantage_key]))
        self.out_keys = ["loss_objective", "loss_cost_objective"]

    @classmethod
    def from_loss(
        cls,
        loss_class: Callable[..., LossModule],
        actor_network: torch.nn.Module,
        num_constraints: int = 1,
        cost_advantage_key: NestedKey = "cost_advantage",
        **loss_kwargs: Any,
    ) -> PerObjectiveLoss:
        """Instantiate ``loss_class(actor_network, **loss_kwargs)`` for the reward and, with the
        advantage key pointed at the negated cost advantage and no entropy bonus, once per
        constraint, e.g. ``PerObjectiveLoss.from_loss(ClipPPOLoss, actor, clip_epsilon=0.2,
        entropy_bonus=False)``."""
        if isinstance(num_constraints, bool) or not isinstance(num_constraints, int):
            raise TypeError(f"num_constraints must be an int, got {num_constraints!r}")
        if num_constraints < 1:
            raise ValueError(f"num_constraints must be >= 1, got {num_constraints}")
        reward = loss_class(actor_network, **loss_kwargs)
        costs = []
        for k in range(num_constraints):
            cost = loss_class(actor_network, **{**loss_kwargs, "entropy_bonus": False})
            cost.set_keys(advantage=negated_cost_key(k))
            costs.append(cost)
        return cls(reward, costs, cost_advantage_key)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        cost_advantage = tensordict.get(self.cost_advantage_key)
        if cost_advantage.shape[-1] != len(self.cost_losses):
            raise ValueError(
                f"{self.cost_advantage_key!r} has {cost_advantage.shape[-1]} constraint(s) but "
                f"there are {len(self.cost_losses)} cost losses"
            )
        out = self.reward_loss(tensordict)
        costs = []
        for k, loss in enumerate(self.cost_losses):
            view = tensordict.copy()  # shallow: only the added advantage entry is new
            view.set(loss.tensor_keys.advantage, -cost_advantage[..., k : k + 1])
            costs.append(loss(view).get("loss_objective"))
        out.set("loss_cost_objective", torch.stack(costs))
        return out
