"""Soft actor-critic (Haarnoja et al. 2018) whose actor step is chosen by a strategy.

One gradient step on a replay batch (:meth:`SAC.update`), from the losses of
:class:`~gradmanip.objectives.SafeSACLoss` on one forward:

1. the actor's directions: the :class:`~gradmanip.driver.GradientDriver` takes the reward loss
   ``L_r = E[alpha log pi - min Q_r]`` and the cost losses ``L_c[k] = E[Q_c,k]``, the strategy
   combines their improvement directions with J_c_hat into ``.grad``. With
   ``entropy_term="shared"`` the strategy combines ``E[-min Q_r]`` and ``L_c`` only, and the
   entropy term's gradient ``grad E[alpha log pi]`` is added to whatever it chose: the policy
   keeps its entropy regularisation when a strategy follows the costs alone (hard switching,
   soft switching above its band), where inside ``L_r`` it would be dropped with the reward;
2. the twin reward critics and the cost critics regress their soft / discounted targets (Adam),
   then the actor's Adam steps along the update (both from the same forward);
3. the temperature: Adam on ``-log_alpha (log pi + H_target)`` (automatic entropy tuning);
4. the target critics move by Polyak averaging, ``Q' <- (1 - tau) Q' + tau Q``
   (TorchRL's :class:`~torchrl.objectives.SoftUpdate`, stepped in one fused pass:
   :class:`~gradmanip.algos.flat_soft_update.FlatSoftUpdate`).

Unconstrained SAC, SAC-Lagrangian, CRPO and PCRPO on SAC are this class with different
strategies; the off-policy loop is :class:`gradmanip.rl.off_policy_trainer.OffPolicyTrainer`.
"""

from __future__ import annotations

import torch
from tensordict import TensorDictBase
from torch import Tensor, nn

from gradmanip.algos.flat_soft_update import FlatSoftUpdate
from gradmanip.algos.settings import check_float, check_int
from gradmanip.driver.gradient_driver import GradientDriver
from gradmanip.driver.step_result import StepResult
from gradmanip.objectives.safe_sac_loss import SafeSACLoss
from gradmanip.rl.sac_models import SACNetworks
from gradmanip.strategies.base import Strategy, as_episode_cost
from gradmanip.strategies.diagnostics import Value

ENTROPY_TERMS = ("reward", "shared")

# metric name -> entry of the loss module's output ([K] for loss/cost and cost_q_value)
METRICS = {
    "loss/reward": "loss_objective",
    "loss/entropy": "loss_entropy",
    "loss/cost": "loss_cost_objective",
    "loss/qvalue": "loss_qvalue",
    "loss/cost_qvalue": "loss_cost_qvalue",
    "loss/alpha": "loss_alpha",
    "alpha": "alpha",
    "entropy": "entropy",
    "q_value": "q_value",
    "cost_q_value": "cost_q_value",
}


class SAC:
    """SAC with per-objective actor losses combined by ``strategy``.

    Args:
        networks: actor and critic templates (see
            :func:`gradmanip.rl.sac_models.make_sac_networks`).
        strategy: any :class:`~gradmanip.strategies.base.Strategy`.
        num_constraints: K, the number of constraints.
        num_cost_qvalue_nets: cost critics per constraint (2: twins, the actor and the targets
            read their maximum, a pessimistic cost estimate; see
            :class:`~gradmanip.objectives.SafeSACLoss`).
        nonnegative_costs: the costs are >= 0: the cost targets clamp the bootstrapped cost
            value at 0 (see :class:`~gradmanip.objectives.SafeSACLoss`).
        entropy_term: ``"reward"`` (``alpha log pi`` is part of ``L_r``, which the strategy
            weighs) or ``"shared"`` (its gradient is added to the strategy's update).
        lr: actor learning rate; ``critic_lr`` for the critics, ``alpha_lr`` for the temperature.
        gamma, cost_gamma: discounts (``cost_gamma`` defaults to ``gamma``).
        tau: Polyak factor of the target critics.
        alpha_init, target_entropy, fixed_alpha: the temperature (``"auto"``: ``-dim(A)``).
        max_grad_norm: clip of the combined actor update and of the critics' gradient
            (``None`` disables).
        actor_delay: the actor and the temperature are updated at every ``actor_delay``-th
            critic update (1: every update, the SAC reference; OmniSafe's SAC uses 2).
        on_nonfinite: ``"raise"`` or ``"skip"`` (passed to the gradient driver).
    """

    def __init__(
        self,
        networks: SACNetworks,
        strategy: Strategy,
        *,
        num_constraints: int = 1,
        num_cost_qvalue_nets: int = 1,
        nonnegative_costs: bool = False,
        entropy_term: str = "reward",
        lr: float = 3e-4,
        critic_lr: float = 1e-3,
        alpha_lr: float = 3e-4,
        gamma: float = 0.99,
        cost_gamma: float | None = None,
        tau: float = 0.005,
        alpha_init: float = 1.0,
        target_entropy: str | float = "auto",
        fixed_alpha: bool = False,
        max_grad_norm: float | None = None,
        actor_delay: int = 1,
        on_nonfinite: str = "raise",
    ) -> None:
        if not isinstance(networks, SACNetworks):
            raise TypeError(
                f"networks must be a gradmanip.rl.sac_models.SACNetworks, got {type(networks)}"
            )
        if not isinstance(strategy, Strategy):
            raise TypeError(
                f"strategy must be a gradmanip.strategies Strategy (see make_strategy), "
                f"got {type(strategy).__name__}"
            )
        self.lr = check_float("lr", lr, 0.0)
        self.critic_lr = check_float("critic_lr", critic_lr, 0.0)
        self.alpha_lr = check_float("alpha_lr", alpha_lr, 0.0)
        self.tau = check_float("tau", tau, 0.0, 1.0)
        self.max_grad_norm = (
            None if max_grad_norm is None else check_float("max_grad_norm", max_grad_norm, 0.0)
        )
        self.num_constraints = check_int("num_constraints", num_constraints, 1)
        self.actor_delay = check_int("actor_delay", actor_delay, 1)
        if entropy_term not in ENTROPY_TERMS:
            raise ValueError(
                f"entropy_term must be one of {ENTROPY_TERMS} (reward: inside L_r; shared: "
                f"added to the strategy's update), got {entropy_term!r}"
            )
        self.entropy_term = entropy_term
        self.networks = networks
        self.strategy = strategy
        self.loss_module = SafeSACLoss(
            networks.actor,
            networks.qvalue,
            networks.cost_qvalue,
            num_constraints=self.num_constraints,
            num_cost_qvalue_nets=check_int("num_cost_qvalue_nets", num_cost_qvalue_nets, 1),
            nonnegative_costs=nonnegative_costs,
            gamma=check_float("gamma", gamma, 0.0, 1.0, open_low=False),
            cost_gamma=None
            if cost_gamma is None
            else check_float("cost_gamma", cost_gamma, 0.0, 1.0, open_low=False),
            alpha_init=check_float("alpha_init", alpha_init, 0.0),
            target_entropy=target_entropy,
            fixed_alpha=fixed_alpha,
        )
        loss = self.loss_module
        self.actor_params = list(networks.actor.parameters())
        self.critic_params = list(loss.qvalue_network_params.values(True, True)) + list(
            loss.cost_qvalue_network_params.values(True, True)
        )
        self.driver = GradientDriver(self.actor_params, strategy, on_nonfinite=on_nonfinite)
        if entropy_term == "shared":
            self.driver.set_keys(reward="loss_objective")
        self.actor_optimizer = torch.optim.Adam(self.actor_params, lr=self.lr, fused=True)
        self.critic_optimizer = torch.optim.Adam(self.critic_params, lr=self.critic_lr, fused=True)
        self.alpha_optimizer = (
            None if fixed_alpha else torch.optim.Adam([loss.log_alpha], lr=self.alpha_lr)
        )
        self.target_updater = FlatSoftUpdate(loss, tau=self.tau)
        self.updates_done = 0

    def __repr__(self) -> str:
        return (
            f"SAC(strategy={type(self.strategy).__name__}, lr={self.lr}, "
            f"critic_lr={self.critic_lr}, alpha_lr={self.alpha_lr}, tau={self.tau}, "
            f"entropy_term={self.entropy_term!r}, "
            f"max_grad_norm={self.max_grad_norm}, actor_delay={self.actor_delay}, "
            f"loss={self.loss_module!r})"
        )

    def update(self, batch: TensorDictBase, episode_cost: Tensor) -> dict[str, Value | Tensor]:
        """One gradient step of critics, actor (through the strategy; every ``actor_delay``-th
        call), temperature and target critics on a replay ``batch``; returns the step's losses
        and values (tensors, [K] for per-constraint ones) and, on actor steps, the strategy's
        diagnostics under ``strategy/<name>``."""
        episode_cost = as_episode_cost(episode_cost).reshape(-1)
        loss = self.loss_module
        losses = loss.critic_losses(batch)
        actor_step = self.updates_done % self.actor_delay == 0
        result = None
        if actor_step:
            # the actor's directions first: their graph reads the critics' current weights
            losses.update(loss.actor_losses(batch))
            result = self._actor_direction(losses, episode_cost)
        self.critic_optimizer.zero_grad(set_to_none=True)
        (losses.get("loss_qvalue") + losses.get("loss_cost_qvalue")).backward()
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.critic_params, self.max_grad_norm, foreach=True)
        self.critic_optimizer.step()
        if actor_step:
            if not result.skipped:
                self.actor_optimizer.step()
            if self.alpha_optimizer is not None:
                self.alpha_optimizer.zero_grad(set_to_none=True)
                losses.get("loss_alpha").backward()
                self.alpha_optimizer.step()
        self.target_updater.step()
        self.updates_done += 1
        metrics: dict[str, Value | Tensor] = {
            name: losses.get(key).detach() for name, key in METRICS.items() if key in losses
        }
        if result is not None:
            metrics["skipped_steps"] = float(result.skipped)
            for name, value in result.diagnostic_values.items():
                metrics[f"strategy/{name}"] = value
        return metrics

    def _actor_direction(self, losses: TensorDictBase, episode_cost: Tensor) -> StepResult:
        """The strategy's update into the actor's ``.grad``, plus the entropy term's gradient
        when it is shared; the clip applies to the sum."""
        if self.entropy_term == "reward":
            return self.driver.backward(losses, episode_cost, self.max_grad_norm)
        entropy = torch.autograd.grad(
            losses.get("loss_entropy"), self.actor_params, retain_graph=True, materialize_grads=True
        )
        result = self.driver.backward(losses, episode_cost)
        if not result.skipped:
            torch._foreach_add_([p.grad for p in self.actor_params], entropy)
            if self.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(self.actor_params, self.max_grad_norm, foreach=True)
        return result

    # ---------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        """Critics, targets and temperature (the loss module), optimizers and the step counter
        (the actor and the strategy are saved by their owners)."""
        return {
            "loss_module": self.loss_module.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "alpha_optimizer": None
            if self.alpha_optimizer is None
            else self.alpha_optimizer.state_dict(),
            "updates_done": self.updates_done,
        }

    def load_state_dict(self, state: dict) -> None:
        self.loss_module.load_state_dict(state["loss_module"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        if self.alpha_optimizer is not None:
            self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.updates_done = int(state["updates_done"])
