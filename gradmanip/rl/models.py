"""Actor-critic for safe RL, built from TorchRL blocks.

A Gaussian policy with a state-independent learned log-std (as the peer benchmarks use), a reward
critic and a separate cost critic, all tanh MLPs (64x64 by default).

Keys (TensorDict in, TensorDict out):

- actor: ``"observation"`` -> ``"loc"``, ``"scale"``, ``"action"``, ``"action_log_prob"``
- reward critic: ``"observation"`` -> ``"state_value"``
- cost critic: ``"observation"`` -> ``"cost_value"`` (``[..., K]``: one value per constraint)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tensordict.nn import AddStateIndependentNormalScale, TensorDictModule
from torch import nn
from torchrl.modules import MLP, IndependentNormal, ProbabilisticActor, ValueOperator


@dataclass
class ActorCritic:
    """The three networks a safe policy-gradient method trains."""

    actor: ProbabilisticActor
    reward_critic: ValueOperator
    cost_critic: ValueOperator

    @property
    def policy_net(self) -> nn.Sequential:
        """The plain ``observation -> (loc, scale)`` network inside the actor (lean hot paths)."""
        return self.actor.module[0].module

    @property
    def num_costs(self) -> int | None:
        """K, the number of constraints: the outputs of the cost critic's last linear layer
        (``None`` for a cost critic without one)."""
        module = getattr(self.cost_critic, "module", self.cost_critic)
        linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        return linears[-1].out_features if linears else None

    def critics(self) -> nn.ModuleList:
        """Both critics, for one optimizer or one checkpoint entry."""
        return nn.ModuleList([self.reward_critic, self.cost_critic])


def _check_sizes(obs_dim: int, action_dim: int, hidden: Sequence[int]) -> None:
    if obs_dim < 1:
        raise ValueError(f"obs_dim must be >= 1, got {obs_dim}")
    if action_dim < 1:
        raise ValueError(f"action_dim must be >= 1, got {action_dim}")
    if len(hidden) == 0 or any(int(h) < 1 for h in hidden):
        raise ValueError(f"hidden must be a non-empty list of positive widths, got {list(hidden)}")


def _mlp(in_dim: int, out_dim: int, hidden: Sequence[int], last_gain: float) -> MLP:
    net = MLP(
        in_features=in_dim, out_features=out_dim, num_cells=list(hidden), activation_class=nn.Tanh
    )
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    for layer in linears:
        nn.init.orthogonal_(layer.weight, gain=math.sqrt(2.0))
        nn.init.zeros_(layer.bias)
    nn.init.orthogonal_(linears[-1].weight, gain=last_gain)
    return net


def make_actor(
    obs_dim: int,
    action_dim: int,
    hidden: Sequence[int] = (64, 64),
    init_log_std: float = -0.5,
    obs_key: str = "observation",
) -> ProbabilisticActor:
    """Gaussian policy: ``loc = MLP(obs)``, ``scale = exp(log_std)``, with a learned,
    state-independent ``log_std`` (initialised to ``init_log_std``).
    Actions are unbounded; the task clips them."""
    _check_sizes(obs_dim, action_dim, hidden)
    net = nn.Sequential(
        _mlp(obs_dim, action_dim, hidden, last_gain=0.01),
        AddStateIndependentNormalScale(action_dim, scale_mapping="exp", init_value=init_log_std),
    )
    module = TensorDictModule(net, in_keys=[obs_key], out_keys=["loc", "scale"])
    return ProbabilisticActor(
        module,
        in_keys=["loc", "scale"],
        out_keys=["action"],
        distribution_class=IndependentNormal,
        return_log_prob=True,
        log_prob_key="action_log_prob",
    )


def make_critic(
    obs_dim: int,
    hidden: Sequence[int] = (64, 64),
    out_key: str = "state_value",
    obs_key: str = "observation",
    num_outputs: int = 1,
) -> ValueOperator:
    """Value network ``observation -> out_key`` (shape ``[..., num_outputs]``)."""
    _check_sizes(obs_dim, 1, hidden)
    if isinstance(num_outputs, bool) or not isinstance(num_outputs, int) or num_outputs < 1:
        raise ValueError(f"num_outputs must be an integer >= 1, got {num_outputs!r}")
    return ValueOperator(
        _mlp(obs_dim, num_outputs, hidden, last_gain=1.0), in_keys=[obs_key], out_keys=[out_key]
    )


def make_actor_critic(
    obs_dim: int,
    action_dim: int,
    hidden: Sequence[int] = (64, 64),
    init_log_std: float = -0.5,
    seed: int | None = None,
    num_costs: int = 1,
) -> ActorCritic:
    """Build actor, reward critic (``"state_value"``) and cost critic (``"cost_value"``, one
    output per constraint: ``num_costs`` = K, e.g. ``safe_envs.num_costs(env_id)``).

    With ``seed`` the initial weights are reproducible without touching the global RNG.
    """
    with torch.random.fork_rng(enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        return ActorCritic(
            actor=make_actor(obs_dim, action_dim, hidden, init_log_std),
            reward_critic=make_critic(obs_dim, hidden, "state_value"),
            cost_critic=make_critic(obs_dim, hidden, "cost_value", num_outputs=num_costs),
        )
