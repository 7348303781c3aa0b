"""Networks of safe SAC, built from TorchRL blocks (Haarnoja et al. 2018).

- actor: a tanh-Gaussian policy, ``"observation" -> "loc", "scale"`` by a ReLU MLP and a
  :class:`~torchrl.modules.TanhNormal` over the task's action box, sampled into ``"action"`` and
  ``"action_log_prob"`` (:class:`~torchrl.modules.ProbabilisticActor`);
- reward critic: ``("observation", "action") -> "state_action_value"``, one network that
  :class:`~gradmanip.objectives.SafeSACLoss` copies into twin critics;
- cost critic: ``("observation", "action") -> "cost_action_value"``, copied once per constraint.

256x256 ReLU MLPs by default, the width of the MuJoCo references (Haarnoja et al.; OmniSafe).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tensordict import TensorDict
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import Tensor, nn
from torchrl.data import Bounded
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import MLP, ProbabilisticActor, TanhNormal, ValueOperator


@dataclass
class SACNetworks:
    """The actor and the two critic templates of safe SAC."""

    actor: ProbabilisticActor
    qvalue: ValueOperator
    cost_qvalue: ValueOperator

    @property
    def action_spec(self) -> Bounded:
        return self.actor.spec["action"]


# parameter-free layers that act elementwise, so they apply unchanged to a stack of N outputs
ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.ELU, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.Sigmoid, nn.Identity)


class StateAction(nn.Module):
    """``(observation, action) -> value``: an MLP on their concatenation.

    :meth:`forward_stacked` evaluates N copies of the network with stacked parameters in one
    batched matrix product per layer (twin critics, one critic per constraint).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.stackable = isinstance(net, nn.Sequential) and all(
            isinstance(layer, nn.Linear)
            or (isinstance(layer, ELEMENTWISE) and next(layer.parameters(), None) is None)
            for layer in net
        )

    def forward(self, observation: Tensor, action: Tensor) -> Tensor:
        return self.net(torch.cat([observation, action], dim=-1))

    def forward_stacked(
        self, params: dict[str, Tensor], observation: Tensor, action: Tensor
    ) -> Tensor | None:
        """The network under each of the stacked ``params`` (names as in ``named_parameters``,
        shapes [N, ...]) on the same input: [N, *batch, out]; ``None`` when a layer is neither
        ``nn.Linear`` nor elementwise (the caller then loops over the N members)."""
        if not self.stackable:
            return None
        x = torch.cat([observation, action], dim=-1)
        batch = x.shape[:-1]
        # features first, [N, features, batch]: h = W h_prev + b, so every weight's gradient
        # comes out of the batched product in the weight's own layout (no copy)
        h = x.reshape(-1, x.shape[-1]).T.unsqueeze(0)
        for name, layer in self.net.named_children():
            if not isinstance(layer, nn.Linear):
                h = layer(h)
                continue
            weight = params[f"net.{name}.weight"]
            h = h.expand(weight.shape[0], *h.shape[1:])
            bias = params.get(f"net.{name}.bias")
            if bias is None:
                h = torch.bmm(weight, h)
            else:
                h = torch.baddbmm(bias.unsqueeze(-1), weight, h)
        return h.mT.reshape(h.shape[0], *batch, h.shape[1])


def _relu_mlp(in_dim: int, out_dim: int, hidden: Sequence[int]) -> MLP:
    if len(hidden) == 0 or any(int(h) < 1 for h in hidden):
        raise ValueError(f"hidden must be a non-empty list of positive widths, got {list(hidden)}")
    return MLP(
        in_features=in_dim,
        out_features=out_dim,
        num_cells=[int(h) for h in hidden],
        activation_class=nn.ReLU,
    )


def make_sac_networks(
    obs_dim: int,
    action_dim: int,
    hidden: Sequence[int] = (256, 256),
    action_low: float | Sequence[float] = -1.0,
    action_high: float | Sequence[float] = 1.0,
    seed: int | None = None,
) -> SACNetworks:
    """Tanh-Gaussian actor over the box ``[action_low, action_high]`` and critic templates.

    With ``seed`` the initial weights are reproducible without touching the global RNG.
    """
    if obs_dim < 1 or action_dim < 1:
        raise ValueError(f"obs_dim and action_dim must be >= 1, got {obs_dim}, {action_dim}")
    low = torch.as_tensor(action_low, dtype=torch.float32).expand(action_dim).clone()
    high = torch.as_tensor(action_high, dtype=torch.float32).expand(action_dim).clone()
    if not bool((low < high).all()) or not bool(
        torch.isfinite(low).all() & torch.isfinite(high).all()
    ):
        raise ValueError(
            f"the action box must be finite with action_low < action_high, got {low.tolist()} "
            f"and {high.tolist()}"
        )
    spec = Bounded(low, high, shape=(action_dim,))
    with torch.random.fork_rng(enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        policy = nn.Sequential(_relu_mlp(obs_dim, 2 * action_dim, hidden), NormalParamExtractor())
        actor = ProbabilisticActor(
            TensorDictModule(policy, in_keys=["observation"], out_keys=["loc", "scale"]),
            in_keys=["loc", "scale"],
            out_keys=["action"],
            spec=spec,
            distribution_class=TanhNormal,
            distribution_kwargs={"low": low, "high": high},
            return_log_prob=True,
            log_prob_key="action_log_prob",
        )
        critics = [
            ValueOperator(
                StateAction(_relu_mlp(obs_dim + action_dim, 1, hidden)),
                in_keys=["observation", "action"],
                out_keys=[key],
            )
            for key in ("state_action_value", "cost_action_value")
        ]
    return SACNetworks(actor, *critics)


class ActionHead(nn.Module):
    """``observation -> (action, scale)`` of an actor: its sample, or its deterministic action
    under a deterministic exploration type (the interface of
    :class:`gradmanip.rl.collect.GaussianPolicy`'s ``policy_net``, for evaluation)."""

    def __init__(self, actor: ProbabilisticActor) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, observation: Tensor) -> tuple[Tensor, Tensor]:
        batch = observation.shape[:-1]
        out = self.actor(TensorDict({"observation": observation}, batch_size=batch))
        return out.get("action"), out.get("scale")


@torch.no_grad()
def deterministic_action(actor: ProbabilisticActor, observation: Tensor) -> Tensor:
    """The actor's deterministic action (the tanh of the Gaussian's mean, scaled to the box)."""
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        return ActionHead(actor)(observation)[0]
