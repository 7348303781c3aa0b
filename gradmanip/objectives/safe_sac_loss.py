"""SAC's losses with one actor loss per objective, for a gradient driver to combine.

A subclass of TorchRL's :class:`~torchrl.objectives.SACLoss` (Haarnoja et al. 2018, SAC v2),
which keeps the parameters (twin reward critics stacked [2, ...], their targets, the actor),
the temperature and its loss; this subclass adds one cost critic per constraint, splits the
actor loss by objective and computes every critic target from one next action. With
``a ~ pi(.|s)`` and ``a' ~ pi(.|s')`` reparameterised (each one sample shared by every
objective) and ``alpha = exp(log_alpha)``:

    L_r    = E[alpha log pi(a|s)] + E[-min_i Q_r,i(s, a)]                   (eq. 7)
           =      loss_entropy     +   loss_objective
    L_c[k] = E[max_j Q_c,k,j(s, a)]
    y_r    = r + gamma (1 - terminal) (min_i Q'_r,i(s', a') - alpha log pi(a'|s'))  (eq. 3, 5)
    y_c[k] = c_k + gamma_c (1 - terminal) max_j Q'_c,k,j(s', a')    (clamped at 0, see below)
    L_alpha = E[-log_alpha (log pi(a|s) + H_target)]                          (eq. 18)

Critic losses are squared errors against the targets (summed over the critics, averaged over
the batch). Each constraint has ``num_cost_qvalue_nets`` cost critics j (default 1). With two,
the maximum is the pessimistic estimate, the mirror of the reward's twin minimum: the actor
lowers Q_c, so a single critic's errors are exploited towards costs below the true ones (which
bootstrapping then spreads); the maximum over twins counters that, as the minimum does for the
reward. With ``nonnegative_costs=True`` the bootstrapped cost value is clamped at 0: every true
Q_c is then >= 0, and the clamp stops an underestimate from compounding through the targets (a
batch with a negative cost raises). The targets Q' are Polyak averages kept by
TorchRL's :class:`~torchrl.objectives.SoftUpdate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase, TensorDictParams
from tensordict.nn import ProbabilisticTensorDictSequential, TensorDictModule
from tensordict.utils import NestedKey
from torch import Tensor
from torch.func import functional_call
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.objectives import SACLoss, ValueEstimators
from torchrl.objectives.sac import compute_rsample_log_prob

from gradmanip.strategies.settings import check_bool
from gradmanip.tanh_gaussian import sampler_or_none


def ensemble(
    module: TensorDictModule, params: TensorDictBase, td: TensorDictBase, detach: bool = False
) -> Tensor:
    """``module`` under each of the stacked ``params`` [N, ...] on the same input, its single
    output stacked: [N, *batch, 1] (``detach``: no gradient reaches ``params``). A plain network
    with a ``forward_stacked(params, *inputs)`` method (the critics of
    :func:`gradmanip.rl.sac_models.make_sac_networks`) computes all members at once, in batched
    matrix products; otherwise it is called with :func:`torch.func.functional_call` once per
    member (N is small, twin critics or one per constraint: a loop costs less than the
    TensorDict machinery of a vectorised map)."""
    inputs = tuple(td.get(key) for key in module.in_keys)
    flat = params.flatten_keys(".")
    # keys(), not iteration: iterating a TensorDict walks its batch dimension
    named = {
        name.removeprefix("module."): (tensor.detach() if detach else tensor)
        for name, tensor in zip(flat.keys(), flat.values(), strict=True)  # noqa: SIM118
    }
    stacked = getattr(module.module, "forward_stacked", None)
    out = None if stacked is None else stacked(named, *inputs)
    if out is not None:
        return out
    return torch.stack(
        [
            functional_call(module.module, {name: t[i] for name, t in named.items()}, inputs)
            for i in range(params.batch_size[0])
        ]
    )


class SafeSACLoss(SACLoss):
    """SAC's critic and temperature losses plus per-objective actor losses (see the module
    docstring).

    Output entries: ``loss_objective`` (``E[-min Q_r]``) and ``loss_entropy``
    (``E[alpha log pi]``), whose sum is the reward objective ``L_r`` (a
    :class:`~gradmanip.driver.GradientDriver` sums both by default), ``loss_cost_objective``
    [K] (``L_c``), ``loss_qvalue`` (twin reward critics), ``loss_cost_qvalue`` (cost critics),
    ``loss_alpha``, and the diagnostics ``alpha``, ``entropy`` (``-log pi`` of the actor's
    sample), ``q_value`` (mean ``min_i Q_r,i``), ``cost_q_value`` [K] (mean ``max_j Q_c,k,j``).

    Args:
        actor_network: a tanh-Gaussian probabilistic actor (see
            :func:`gradmanip.rl.sac_models.make_sac_networks`).
        qvalue_network: the reward critic, copied into ``num_qvalue_nets`` twins.
        cost_qvalue_network: the cost critic, copied ``num_cost_qvalue_nets`` times per
            constraint.
        num_constraints: K.
        num_cost_qvalue_nets: cost critics per constraint (default 1; with more, the actor
            and the targets read their maximum: 2 makes the pessimistic twins).
        nonnegative_costs: the costs are >= 0: clamp the bootstrapped cost value at 0 (a
            negative cost in a batch raises).
        gamma, cost_gamma: discounts of the reward and cost targets (``cost_gamma`` defaults to
            ``gamma``).
        alpha_init, target_entropy, fixed_alpha, min_alpha, max_alpha: the temperature
            (``target_entropy="auto"``: minus the action dimension).
    """

    @dataclass
    class _AcceptedKeys(SACLoss._AcceptedKeys):
        cost: NestedKey = "cost"
        cost_action_value: NestedKey = "cost_action_value"

    default_keys = _AcceptedKeys
    cost_qvalue_network: TensorDictModule
    cost_qvalue_network_params: TensorDictParams
    target_cost_qvalue_network_params: TensorDictParams

    def __init__(
        self,
        actor_network: ProbabilisticTensorDictSequential,
        qvalue_network: TensorDictModule,
        cost_qvalue_network: TensorDictModule,
        *,
        num_constraints: int = 1,
        gamma: float = 0.99,
        cost_gamma: float | None = None,
        num_qvalue_nets: int = 2,
        num_cost_qvalue_nets: int = 1,
        nonnegative_costs: bool = False,
        alpha_init: float = 1.0,
        target_entropy: str | float = "auto",
        fixed_alpha: bool = False,
        min_alpha: float | None = None,
        max_alpha: float | None = None,
    ) -> None:
        if isinstance(num_constraints, bool) or not isinstance(num_constraints, int):
            raise TypeError(f"num_constraints must be an int, got {num_constraints!r}")
        if num_constraints < 1:
            raise ValueError(f"num_constraints must be >= 1, got {num_constraints}")
        if (
            isinstance(num_cost_qvalue_nets, bool)
            or not isinstance(num_cost_qvalue_nets, int)
            or num_cost_qvalue_nets < 1
        ):
            raise ValueError(
                f"num_cost_qvalue_nets must be an int >= 1 (1: one cost critic per constraint, "
                f"2 or more: their maximum), got {num_cost_qvalue_nets!r}"
            )
        if not isinstance(nonnegative_costs, bool):
            raise TypeError(f"nonnegative_costs must be a bool, got {nonnegative_costs!r}")
        cost_gamma = gamma if cost_gamma is None else cost_gamma
        for name, value in (("gamma", gamma), ("cost_gamma", cost_gamma)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        if not alpha_init > 0:
            raise ValueError(f"alpha_init must be > 0, got {alpha_init}")
        check_bool(fixed_alpha, "fixed_alpha")
        if target_entropy != "auto" and (
            isinstance(target_entropy, bool)
            or not isinstance(target_entropy, int | float)
            or not math.isfinite(target_entropy)
        ):
            raise ValueError(
                f"target_entropy must be 'auto' (-dim(action)) or a finite number, "
                f"got {target_entropy!r}"
            )
        super().__init__(
            actor_network,
            qvalue_network,
            num_qvalue_nets=num_qvalue_nets,
            loss_function="l2",
            alpha_init=alpha_init,
            min_alpha=min_alpha,
            max_alpha=max_alpha,
            action_spec=actor_network.spec,
            fixed_alpha=fixed_alpha,
            target_entropy=target_entropy,
        )
        self.convert_to_functional(
            cost_qvalue_network,
            "cost_qvalue_network",
            num_constraints * num_cost_qvalue_nets,
            create_target_params=True,
            compare_against=list(self.actor_network_params.values(True, True)),
        )
        self.num_constraints = num_constraints
        self.num_cost_qvalue_nets = num_cost_qvalue_nets
        self.gamma = float(gamma)
        self.cost_gamma = float(cost_gamma)
        self.nonnegative_costs = nonnegative_costs
        self.make_value_estimator(ValueEstimators.TD0, gamma=self.gamma)
        # draws on plain tensors where the actor's layout allows (the same draws as get_dist)
        self._sampler = sampler_or_none(self.actor_network)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_constraints={self.num_constraints}, "
            f"num_qvalue_nets={self.num_qvalue_nets}, "
            f"num_cost_qvalue_nets={self.num_cost_qvalue_nets}, "
            f"nonnegative_costs={self.nonnegative_costs}, gamma={self.gamma}, "
            f"cost_gamma={self.cost_gamma}, target_entropy={float(self.target_entropy):.4g}, "
            f"fixed_alpha={self.fixed_alpha})"
        )

    @property
    def out_keys(self) -> list[NestedKey]:
        return [
            "loss_objective",
            "loss_entropy",
            "loss_cost_objective",
            "loss_qvalue",
            "loss_cost_qvalue",
            "loss_alpha",
            "alpha",
            "entropy",
            "q_value",
            "cost_q_value",
        ]

    @out_keys.setter
    def out_keys(self, values) -> None:  # SACLoss assigns it once; the keys are fixed here
        pass

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Every entry: :meth:`critic_losses`, then :meth:`actor_losses` (in that order of random
        draws: the next action of the targets, then the actor's sample)."""
        critics = self.critic_losses(tensordict)
        return critics.update(self.actor_losses(tensordict))

    def _sample(self, tensordict: TensorDictBase) -> tuple[Tensor, Tensor]:
        """A reparameterised action of the actor and its log-probability."""
        sampler = self._sampler
        with self.actor_network_params.to_module(self.actor_network):
            if sampler is not None:
                return sampler.rsample(tensordict.get(sampler.observation_key))
            with set_exploration_type(ExplorationType.RANDOM):
                return compute_rsample_log_prob(self.actor_network.get_dist(tensordict))

    def _critic_inputs(self, tensordict: TensorDictBase, action: Tensor | None) -> TensorDictBase:
        keys = dict.fromkeys([*self.qvalue_network.in_keys, *self.cost_qvalue_network.in_keys])
        inputs = tensordict.select(*keys, strict=False)
        if action is not None:
            inputs.set(self.tensor_keys.action, action)
        return inputs

    def _cost_values(self, params: TensorDictBase, inputs: TensorDictBase, **kwargs) -> Tensor:
        """``max_j Q_c,k,j`` under the cost critics' ``params`` [K * J, ...]: [K, B]."""
        values = ensemble(self.cost_qvalue_network, params, inputs, **kwargs).squeeze(-1)
        if self.num_cost_qvalue_nets == 1:
            return values
        return values.unflatten(0, (self.num_constraints, self.num_cost_qvalue_nets)).amax(1)

    def targets(self, tensordict: TensorDictBase) -> tuple[Tensor, Tensor]:
        """The critics' targets on one next action ``a' ~ pi(.|s')``: ``y_r`` [B] (the soft
        target with the twin minimum) and ``y_c`` [K, B]."""
        keys = self.tensor_keys
        with torch.no_grad():
            following = tensordict.get("next")
            next_action, next_log_prob = self._sample(following)
            inputs = self._critic_inputs(following, next_action)
            next_q = ensemble(
                self.qvalue_network, self.target_qvalue_network_params, inputs
            ).squeeze(-1)
            next_cost_q = self._cost_values(self.target_cost_qvalue_network_params, inputs)
            batch = next_q.shape[-1]
            cost = following.get(keys.cost).reshape(batch, -1).T
            if cost.shape[0] != self.num_constraints:
                raise ValueError(
                    f"{('next', keys.cost)!r} has {cost.shape[0]} constraint(s) but the loss "
                    f"was built with num_constraints={self.num_constraints}"
                )
            if self.nonnegative_costs:
                self._check_nonnegative(cost)
                next_cost_q = next_cost_q.clamp(min=0.0)
            alive = 1.0 - following.get(keys.terminated).reshape(batch).to(cost.dtype)
            reward = following.get(keys.reward).reshape(batch)
            soft_value = next_q.min(0)[0] - self._alpha * next_log_prob.reshape(batch)
            return (
                reward + self.gamma * alive * soft_value,
                cost + self.cost_gamma * alive * next_cost_q,
            )

    @staticmethod
    def _check_nonnegative(cost: Tensor) -> None:
        lowest = float(cost.min())
        if lowest < 0:
            raise ValueError(
                f"a per-step cost of {lowest:g} is negative, but nonnegative_costs=True clamps "
                f"the cost values at 0; set nonnegative_costs=False "
                f"(algo.base.nonnegative_costs=false) for this task"
            )

    def critic_losses(self, tensordict: TensorDictBase) -> TensorDictBase:
        """``loss_qvalue`` (twin reward critics) and ``loss_cost_qvalue`` (cost critics): squared
        errors against :meth:`targets`, summed over the critics, averaged over the batch."""
        reward_target, cost_target = self.targets(tensordict)
        inputs = self._critic_inputs(tensordict, None)
        q = ensemble(self.qvalue_network, self.qvalue_network_params, inputs).squeeze(-1)
        cost_q = ensemble(
            self.cost_qvalue_network, self.cost_qvalue_network_params, inputs
        ).squeeze(-1)
        # member k * J + j is critic j of constraint k
        cost_target = cost_target.repeat_interleave(self.num_cost_qvalue_nets, 0)
        return TensorDict(
            {
                "loss_qvalue": (q - reward_target).square().mean(-1).sum(),
                "loss_cost_qvalue": (cost_q - cost_target).square().mean(-1).sum(),
            }
        )

    def actor_losses(self, tensordict: TensorDictBase) -> TensorDictBase:
        """The per-objective actor losses on one reparameterised sample, the temperature loss
        and their diagnostics."""
        action, log_prob = self._sample(tensordict)
        inputs = self._critic_inputs(tensordict, action)
        q_reward = ensemble(
            self.qvalue_network, self.qvalue_network_params, inputs, detach=True
        ).squeeze(-1)
        q_cost = self._cost_values(self.cost_qvalue_network_params, inputs, detach=True)
        min_q = q_reward.min(0)[0]
        alpha = self._alpha
        return TensorDict(
            {
                "loss_objective": -min_q.mean(),
                "loss_entropy": (alpha * log_prob).mean(),
                "loss_cost_objective": q_cost.mean(-1),
                "loss_alpha": self.alpha_loss(log_prob.detach()).mean(),
                "alpha": alpha,
                "entropy": -log_prob.detach().mean(),
                "q_value": min_q.detach().mean(),
                "cost_q_value": q_cost.detach().mean(-1),
            }
        )
