"""PPO base with per-objective clipped surrogates combined by a gradient-manipulation strategy.

Each minibatch step reads the per-objective losses of :class:`~gradmanip.objectives.SafePPOLoss`
(Schulman et al. 2017, eq. 7, with ``rho = pi(a|s) / pi_old(a|s)``):

    L_r = E[min(rho A_r, clip(rho, 1-eps, 1+eps) A_r)]                (to maximise)
    L_c = E[max(rho A_c, clip(rho, 1-eps, 1+eps) A_c)]                (pessimistic, to minimise)

The :class:`~gradmanip.driver.GradientDriver` takes ``-L_r - entropy_coef * H`` and ``+L_c``
(one per constraint), whose negated gradients are the improvement directions ``g_r`` and
``g_c``; the strategy combines them, the driver writes ``-update`` (clipped in norm) into
``.grad`` and Adam steps. Both critics regress their value targets with one optimizer step per
minibatch. Unconstrained PPO, PPO-Lagrangian, CRPO, PCGrad and PCRPO are this class with
different strategies.

A minibatch is one gather from the batch packed once per update (one ``randperm`` per pass). For
tanh-MLP networks (the default models) the step is taken by :class:`~gradmanip.fast.LeanPPOStep`,
which computes the same update without the autograd engine (``lean=None`` chooses it
automatically; ``lean=False`` forces the generic step above). One module holds the update phase:
settings, minibatch loop, early stop, learning-rate schedule, metrics and checkpoint state.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor, nn

from gradmanip.algos.settings import check_float, check_int
from gradmanip.driver.gradient_driver import GradientDriver
from gradmanip.fast.lean_ppo import LeanPPOStep
from gradmanip.gaussian import gaussian_kl
from gradmanip.objectives.safe_ppo_loss import SafePPOLoss
from gradmanip.rl.advantages import ON_POLICY_KEYS
from gradmanip.rl.metric_names import constraint_columns
from gradmanip.rl.models import ActorCritic
from gradmanip.strategies.base import Strategy, as_episode_cost
from gradmanip.strategies.delayed import DelayedSafety
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.trust_region import TrustRegionStrategy

# the batch's entries PPO reads: the on-policy ones and the behaviour policy's Gaussian (its KL)
BATCH_KEYS = (*ON_POLICY_KEYS, "loc", "scale")
# the minibatch layout: the columns packed side by side in the order update() splits them
_PACKED_KEYS = (
    "observation",
    "action",
    "action_log_prob",
    "advantage",
    "cost_advantage",
    "value_target",
    "cost_value_target",
)

# a step's strategy diagnostics: Python values (coefficient path) or tensors (aggregate)
Diagnostics = Mapping[str, Value | Tensor]


class PPO:
    """Clipped-surrogate PPO whose actor step is chosen by ``strategy``.

    Args:
        actor_critic: the networks (see :func:`gradmanip.rl.models.make_actor_critic`).
        strategy: any :class:`~gradmanip.strategies.base.Strategy`.
        lr: actor learning rate (Adam). ``critic_lr`` defaults to ``lr``.
        epochs: passes over the batch per update (OmniSafe: 40 "update iterations").
        minibatch_size: samples per gradient step (the last minibatch of a pass may be smaller).
        clip_epsilon: PPO ratio clip.
        entropy_coef: weight of the policy entropy bonus added to the reward objective.
        max_grad_norm: clip of the combined actor update and of the critics' gradient
            (``None`` disables).
        target_kl: stop the passes early once the mean KL(old || new) over the batch exceeds it
            (checked after every pass; ``None`` disables).
        lr_schedule_updates: decay both learning rates linearly to 0 over this many ``update``
            calls (``None``: constant).
        on_nonfinite: ``"raise"`` or ``"skip"`` (passed to the gradient driver).
        lean: compute the per-objective and critic gradients by hand-written backpropagation
            (:mod:`gradmanip.fast.mlp_backprop`) instead of autograd; ``None`` uses it when the
            networks are tanh MLPs (the default models), ``True`` requires it.
        generator: RNG for minibatch shuffling (default: a fresh one seeded from torch's RNG).
    """

    def __init__(
        self,
        actor_critic: ActorCritic,
        strategy: Strategy,
        *,
        lr: float = 3e-4,
        critic_lr: float | None = None,
        epochs: int = 40,
        minibatch_size: int = 64,
        clip_epsilon: float = 0.2,
        entropy_coef: float = 0.0,
        max_grad_norm: float | None = 40.0,
        target_kl: float | None = 0.02,
        lr_schedule_updates: int | None = None,
        on_nonfinite: str = "raise",
        lean: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(actor_critic, ActorCritic):
            raise TypeError(
                f"actor_critic must be a gradmanip.rl.models.ActorCritic, got {type(actor_critic)}"
            )
        if not isinstance(strategy, Strategy):
            raise TypeError(
                f"strategy must be a gradmanip.strategies Strategy (see make_strategy), "
                f"got {type(strategy).__name__}"
            )
        inner = strategy.strategy if isinstance(strategy, DelayedSafety) else strategy
        if isinstance(inner, TrustRegionStrategy):
            raise ValueError(
                f"strategy {inner.name!r} is a trust-region rule: it sizes its step in the Fisher "
                "metric and line-searches it, which needs the natural-gradient base "
                "(NaturalGradient; algo=trpo in the recipes), not PPO"
            )
        self.lr = check_float("lr", lr, 0.0)
        self.critic_lr = check_float("critic_lr", lr if critic_lr is None else critic_lr, 0.0)
        self.epochs = check_int("epochs", epochs, 1)
        self.minibatch_size = check_int("minibatch_size", minibatch_size, 1)
        self.clip_epsilon = check_float("clip_epsilon", clip_epsilon, 0.0)
        self.entropy_coef = check_float("entropy_coef", entropy_coef, 0.0, open_low=False)
        self.max_grad_norm = (
            None if max_grad_norm is None else check_float("max_grad_norm", max_grad_norm, 0.0)
        )
        self.target_kl = None if target_kl is None else check_float("target_kl", target_kl, 0.0)
        self.lr_schedule_updates = (
            None
            if lr_schedule_updates is None
            else check_int("lr_schedule_updates", lr_schedule_updates, 1)
        )
        self.actor_critic = actor_critic
        self.strategy = strategy
        self.policy_net = actor_critic.policy_net
        self.reward_value_net = actor_critic.reward_critic.module
        self.cost_value_net = actor_critic.cost_critic.module
        self.actor_params = list(actor_critic.actor.parameters())
        self.critic_params = list(actor_critic.critics().parameters())
        self.driver = GradientDriver(self.actor_params, strategy, on_nonfinite=on_nonfinite)
        self.loss_module = SafePPOLoss(
            actor_critic.actor,
            actor_critic.reward_critic,
            actor_critic.cost_critic,
            clip_epsilon=self.clip_epsilon,
            entropy_coeff=self.entropy_coef,
        )
        self.actor_optimizer = torch.optim.Adam(self.actor_params, lr=self.lr, fused=True)
        self.critic_optimizer = torch.optim.Adam(self.critic_params, lr=self.critic_lr, fused=True)
        self.lean = self._resolve_lean(lean)
        self.fast_step = (
            LeanPPOStep(
                self.policy_net,
                [self.reward_value_net, self.cost_value_net],
                self.actor_optimizer,
                self.critic_optimizer,
                clip_epsilon=self.clip_epsilon,
                entropy_coef=self.entropy_coef,
                max_grad_norm=self.max_grad_norm,
                raise_on_nonfinite=on_nonfinite == "raise",
            )
            if self.lean
            else None
        )
        if generator is None:
            generator = torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()))
        self.generator = generator
        self.updates_done = 0

    def __repr__(self) -> str:
        return (
            f"PPO(strategy={type(self.strategy).__name__}, lr={self.lr}, "
            f"critic_lr={self.critic_lr}, epochs={self.epochs}, "
            f"minibatch_size={self.minibatch_size}, clip_epsilon={self.clip_epsilon}, "
            f"entropy_coef={self.entropy_coef}, max_grad_norm={self.max_grad_norm}, "
            f"target_kl={self.target_kl}, lr_schedule_updates={self.lr_schedule_updates}, "
            f"lean={self.lean})"
        )

    def _resolve_lean(self, lean: bool | None) -> bool:
        supported = LeanPPOStep.supports(
            self.policy_net, [self.reward_value_net, self.cost_value_net]
        ) and [id(p) for p in self.driver.params] == [id(p) for p in self.policy_net.parameters()]
        if lean and not supported:
            raise TypeError(
                "lean=True needs tanh-MLP networks as built by "
                "gradmanip.rl.models.make_actor_critic; pass lean=None (automatic) or lean=False "
                "for other architectures"
            )
        return supported if lean is None else bool(lean)

    # ------------------------------------------------------------------------------- helpers
    @staticmethod
    def flatten_batch(batch: TensorDictBase) -> dict[str, Tensor]:
        """Pre-extract the update's inputs as contiguous ``[N, ...]`` tensors (no grad)."""
        missing = [key for key in BATCH_KEYS if key not in batch]
        if missing:
            raise KeyError(
                f"PPO.update needs {missing} in the batch (compute advantages first with "
                f"gradmanip.rl.advantages.SafeAdvantages)"
            )
        n = batch.numel()
        flat = {}
        for key in BATCH_KEYS:
            value = batch.get(key).detach()
            flat[key] = value.reshape(n, *value.shape[batch.batch_dims :]).contiguous()
        flat["action_log_prob"] = flat["action_log_prob"].reshape(n)
        flat["advantage"] = flat["advantage"].reshape(n)
        flat["value_target"] = flat["value_target"].reshape(n, 1)
        flat["cost_advantage"] = flat["cost_advantage"].reshape(n, -1)
        flat["cost_value_target"] = flat["cost_value_target"].reshape(n, -1)
        return flat

    def _set_learning_rates(self) -> float:
        if self.lr_schedule_updates is None:
            return 1.0
        fraction = max(0.0, 1.0 - self.updates_done / self.lr_schedule_updates)
        for group in self.actor_optimizer.param_groups:
            group["lr"] = self.lr * fraction
        for group in self.critic_optimizer.param_groups:
            group["lr"] = self.critic_lr * fraction
        return fraction

    @torch.no_grad()
    def mean_kl(self, observation: Tensor, old_loc: Tensor, old_scale: Tensor) -> float:
        """Mean KL(pi_old || pi) over ``observation``."""
        loc, scale = self.policy_net(observation)
        return gaussian_kl(old_loc, old_scale, loc, scale.expand_as(loc)).mean().item()

    def _generic_step(
        self,
        minibatch: Mapping[str, Tensor],
        episode_cost: Tensor,
    ) -> tuple[Tensor, Diagnostics, bool, Tensor]:
        """One step through :class:`SafePPOLoss`, the gradient driver and the two optimizers."""
        losses = self.loss_module(TensorDict(minibatch, batch_size=[len(minibatch["action"])]))
        result = self.driver.backward(losses, episode_cost, self.max_grad_norm)
        if not result.skipped:
            self.actor_optimizer.step()
        self.critic_optimizer.zero_grad(set_to_none=True)
        losses.get("loss_critic").backward()
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.critic_params, self.max_grad_norm, foreach=True)
        self.critic_optimizer.step()
        reward_loss = losses.get("loss_objective") + losses.get("loss_entropy")
        actor_losses = torch.cat(
            [reward_loss.detach().view(1), losses.get("loss_cost_objective").detach()]
        )
        critic_losses = torch.stack([losses.get("value_error"), losses.get("cost_value_error")])
        return actor_losses, result.diagnostic_values, result.skipped, critic_losses

    # -------------------------------------------------------------------------------- update
    def update(self, batch: TensorDictBase, episode_cost: Tensor) -> dict[str, float]:
        """Run the PPO passes on ``batch`` (advantages already computed) and return metrics."""
        data = self.flatten_batch(batch)
        episode_cost = as_episode_cost(episode_cost).reshape(-1)  # float64 (J_c_hat)
        lr_fraction = self._set_learning_rates()
        if self.fast_step is not None:
            self.fast_step.begin_update()
        n, size = data["observation"].shape[0], self.minibatch_size
        actor_losses: list[Tensor] = []
        critic_losses: list[Tensor] = []
        diagnostics_seen: dict[str, list[Value | Tensor]] = {}
        steps = skipped = passes = 0
        kl = float("nan")
        columns = [data[key].reshape(n, -1) for key in _PACKED_KEYS]
        widths = [column.shape[1] for column in columns]
        widths[3:5] = [widths[3] + widths[4]]  # reward and cost advantages side by side
        packed = torch.cat(columns, dim=1)
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=self.generator)
            for start in range(0, n, size):
                # one gather of all per-sample columns, then views
                obs, action, old_log_prob, advantages, value_target, cost_target = packed[
                    perm[start : start + size]
                ].split(widths, dim=1)
                if self.fast_step is not None:
                    losses, diagnostics, was_skipped, critic_loss = self.fast_step.step(
                        self.strategy,
                        obs,
                        action,
                        old_log_prob.squeeze(1),
                        advantages,
                        episode_cost,
                        value_target,
                        cost_target,
                    )
                else:
                    minibatch = {
                        "observation": obs,
                        "action": action,
                        "action_log_prob": old_log_prob.squeeze(1),
                        "advantage": advantages[:, :1],
                        "cost_advantage": advantages[:, 1:],
                        "value_target": value_target,
                        "cost_value_target": cost_target,
                    }
                    losses, diagnostics, was_skipped, critic_loss = self._generic_step(
                        minibatch, episode_cost
                    )
                critic_losses.append(critic_loss)
                actor_losses.append(losses)
                for name, value in diagnostics.items():
                    diagnostics_seen.setdefault(name, []).append(value)
                steps += 1
                skipped += int(was_skipped)
            passes += 1
            if self.target_kl is not None:
                kl = self.mean_kl(data["observation"], data["loc"], data["scale"])
                if kl > self.target_kl:
                    break
        if self.target_kl is None:
            kl = self.mean_kl(data["observation"], data["loc"], data["scale"])
        self.updates_done += 1
        return self._metrics(
            actor_losses, critic_losses, diagnostics_seen, steps, skipped, passes, kl, lr_fraction
        )

    def _metrics(
        self,
        actor_losses: list[Tensor],
        critic_losses: list[Tensor],
        diagnostics_seen: dict[str, list[Value | Tensor]],
        steps: int,
        skipped: int,
        passes: int,
        kl: float,
        lr_fraction: float,
    ) -> dict[str, float]:
        """Means over the minibatch steps (diagnostics: over the steps that reported them)."""
        losses = torch.stack(actor_losses).mean(0).tolist()
        critic = torch.stack(critic_losses).mean(0).tolist()
        metrics = {
            "loss/reward": losses[0],
            "loss/value": critic[0],
            "loss/cost_value": critic[1],
            "kl": kl,
            "passes": float(passes),
            "minibatch_steps": float(steps),
            "skipped_steps": float(skipped),
            "lr": self.lr * lr_fraction,
        }
        metrics.update(constraint_columns("loss/cost", losses[1:]))
        for name, values in diagnostics_seen.items():
            if isinstance(values[0], Tensor):  # from aggregate(); the fast path gives floats
                values = torch.stack(values).detach().double()
            mean = torch.as_tensor(values, dtype=torch.float64).mean(0).reshape(-1).tolist()
            metrics.update(constraint_columns(f"strategy/{name}", mean))
        return metrics

    # ---------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        """Optimizers, update counter and shuffling RNG (networks and strategy are saved by
        their owners, see :class:`gradmanip.rl.trainer.Trainer`)."""
        return {
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "updates_done": self.updates_done,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.updates_done = int(state["updates_done"])
        self.generator.set_state(state["generator"])
