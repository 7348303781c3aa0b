"""PPO base with per-objective clipped surrogates combined by a gradient-manipulation strategy.

One actor forward per minibatch gives both clipped surrogates (Schulman et al. 2017, eq. 7):

    L_r = E[min(rho A_r, clip(rho, 1-eps, 1+eps) A_r)]                (to maximise)
    L_c = E[max(rho A_c, clip(rho, 1-eps, 1+eps) A_c)]                (pessimistic, to minimise)

with ``rho = pi(a|s) / pi_old(a|s)``. The losses handed to the
:class:`~gradmanip.directions.GradientDriver` are ``-L_r - entropy_coef * H`` and ``+L_c`` (one
per constraint), so their negated gradients are the improvement directions ``g_r`` and ``g_c``;
the strategy combines them and the driver writes ``-update`` into ``.grad``. The combined update
is clipped in norm and applied by Adam. Both critics regress their value targets with one
optimizer step per minibatch. Unconstrained PPO, PPO-Lagrangian, CRPO, PCGrad and PCRPO are this
class with different strategies.

The hot loop works on flat, contiguous tensors extracted once per update: log-probabilities of
the diagonal Gaussian come straight from ``(loc, scale)``, a minibatch is one gather from a packed
``[N, D]`` tensor with one ``randperm`` per pass. With tanh-MLP networks (the default models) the
per-objective policy gradients and the critics' gradients come from hand-written backpropagation
(:mod:`gradmanip.algos.mlp_backprop`, checked against autograd in the tests), which avoids the
autograd engine's per-call overhead; other networks take the driver's autograd path. On that lean
path a linear strategy is applied through its coefficients and the directions' Gram matrix
(whose diagonal is also the finiteness check: non-finite directions never reach the
parameters), and actor and critics take one fused Adam kernel call per minibatch
(:class:`FusedAdamSteps`, state kept in the two optimizers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from tensordict import TensorDictBase
from torch import Tensor, nn

from gradmanip.algos.fused_adam import FusedAdamSteps
from gradmanip.algos.mlp_backprop import CriticGradients, GaussianPolicyGradients
from gradmanip.directions import GradientDriver
from gradmanip.gaussian import HALF_LOG_2PI, gaussian_kl, gaussian_log_prob
from gradmanip.models import ActorCritic
from gradmanip.step_result import clip_factor, update_norm
from gradmanip.strategies.base import Strategy, as_episode_cost
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.linear import DIAGONAL_RANGE, combine_into

_PACKED_KEYS = (
    "observation",
    "action",
    "action_log_prob",
    "advantage",
    "cost_advantage",
    "value_target",
    "cost_value_target",
)
BATCH_KEYS = (
    "observation",
    "action",
    "action_log_prob",
    "loc",
    "scale",
    "advantage",
    "cost_advantage",
    "value_target",
    "cost_value_target",
)

# a step's strategy diagnostics: Python values (coefficient path) or tensors (aggregate)
Diagnostics = Mapping[str, Value | Tensor]


def clipped_surrogates(
    ratio: Tensor, advantage: Tensor, cost_advantage: Tensor, clip_epsilon: float
) -> tuple[Tensor, Tensor]:
    """(reward surrogate to maximise, cost surrogates [K] to minimise) from ``ratio [B]``,
    ``advantage [B]`` and ``cost_advantage [B, K]``; both pessimistic (clipped) bounds."""
    clipped = ratio.clamp(1.0 - clip_epsilon, 1.0 + clip_epsilon)
    reward = torch.min(ratio * advantage, clipped * advantage).mean()
    ratio_k, clipped_k = ratio.unsqueeze(-1), clipped.unsqueeze(-1)
    cost = torch.max(ratio_k * cost_advantage, clipped_k * cost_advantage).mean(0)
    return reward, cost


def _check(name: str, value: float, low: float, low_inclusive: bool = False) -> float:
    value = float(value)
    ok = value >= low if low_inclusive else value > low
    if not ok or not math.isfinite(value):
        bound = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be finite and {bound} {low}, got {value}")
    return value


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class PPO:
    """Clipped-surrogate PPO whose actor step is chosen by ``strategy``.

    Args:
        actor_critic: the networks (see :func:`gradmanip.models.make_actor_critic`).
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
            (:mod:`gradmanip.algos.mlp_backprop`) instead of autograd; ``None`` uses it when the
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
                f"actor_critic must be a gradmanip.models.ActorCritic, got {type(actor_critic)}"
            )
        if not isinstance(strategy, Strategy):
            raise TypeError(
                f"strategy must be a gradmanip.strategies Strategy (see make_strategy), "
                f"got {type(strategy).__name__}"
            )
        self.lr = _check("lr", lr, 0.0)
        self.critic_lr = _check("critic_lr", lr if critic_lr is None else critic_lr, 0.0)
        self.epochs = _check_count("epochs", epochs)
        self.minibatch_size = _check_count("minibatch_size", minibatch_size)
        self.clip_epsilon = _check("clip_epsilon", clip_epsilon, 0.0)
        self.entropy_coef = _check("entropy_coef", entropy_coef, 0.0, low_inclusive=True)
        self.max_grad_norm = (
            None if max_grad_norm is None else _check("max_grad_norm", max_grad_norm, 0.0)
        )
        self.target_kl = None if target_kl is None else _check("target_kl", target_kl, 0.0)
        self.lr_schedule_updates = (
            None
            if lr_schedule_updates is None
            else _check_count("lr_schedule_updates", lr_schedule_updates)
        )
        self.actor_critic = actor_critic
        self.strategy = strategy
        self.policy_net = actor_critic.policy_net
        self.reward_value_net = actor_critic.reward_critic.module
        self.cost_value_net = actor_critic.cost_critic.module
        self.actor_params = list(actor_critic.actor.parameters())
        self.critic_params = list(actor_critic.critics().parameters())
        self.driver = GradientDriver(self.actor_params, strategy, on_nonfinite=on_nonfinite)
        self.lean = self._resolve_lean(lean)
        if self.lean:
            self.policy_gradients = GaussianPolicyGradients(self.policy_net)
            self.critic_gradients = CriticGradients([self.reward_value_net, self.cost_value_net])
        self.actor_optimizer = torch.optim.Adam(self.actor_params, lr=self.lr, fused=True)
        self.critic_optimizer = torch.optim.Adam(self.critic_params, lr=self.critic_lr, fused=True)
        if self.lean:
            # -update of the actor (views of one flat buffer, in the driver's parameter order)
            self.actor_grad = torch.zeros(self.policy_gradients.numel)
            self.actor_grad_views = [
                chunk.view_as(p)
                for chunk, p in zip(
                    self.actor_grad.split(self.policy_gradients.sizes),
                    self.driver.params,
                    strict=True,
                )
            ]
            self.adam_steps = FusedAdamSteps([self.actor_optimizer, self.critic_optimizer])
            self._strategy_validated = False
            self._linear_strategy = getattr(strategy, "is_linear", False)
            self._largest_safe = 0.5 * torch.finfo(self.actor_grad.dtype).max
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
        supported = (
            GaussianPolicyGradients.supports(self.policy_net)
            and CriticGradients.supports([self.reward_value_net, self.cost_value_net])
            and [id(p) for p in self.driver.params] == [id(p) for p in self.policy_net.parameters()]
        )
        if lean and not supported:
            raise TypeError(
                "lean=True needs tanh-MLP networks as built by gradmanip.models.make_actor_critic;"
                " pass lean=None (automatic) or lean=False for other architectures"
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
                f"gradmanip.advantages.SafeAdvantages)"
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

    def _critic_step(self, obs: Tensor, value_target: Tensor, cost_target: Tensor) -> Tensor:
        value_loss = (self.reward_value_net(obs) - value_target).square().mean()
        cost_value_loss = (self.cost_value_net(obs) - cost_target).square().mean()
        loss = value_loss + cost_value_loss
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.critic_params, self.max_grad_norm, foreach=True)
        self.critic_optimizer.step()
        return torch.stack([value_loss.detach(), cost_value_loss.detach()])

    def _actor_step(
        self,
        obs: Tensor,
        action: Tensor,
        old_log_prob: Tensor,
        advantages: Tensor,
        episode_cost: Tensor,
    ) -> tuple[Tensor, Diagnostics, bool]:
        """One policy step; ``advantages [B, 1 + K]``: reward column, then the costs."""
        loc, scale = self.policy_net(obs)
        log_prob = gaussian_log_prob(action, loc, scale)
        ratio = (log_prob - old_log_prob).exp()
        reward_surrogate, cost_surrogates = clipped_surrogates(
            ratio, advantages[:, 0], advantages[:, 1:], self.clip_epsilon
        )
        reward_loss = -reward_surrogate
        if self.entropy_coef > 0.0:
            entropy = (scale.log() + 0.5 + HALF_LOG_2PI).sum(-1).mean()
            reward_loss = reward_loss - self.entropy_coef * entropy
        result = self.driver.step(
            reward_loss, list(cost_surrogates.unbind(0)), episode_cost, self.max_grad_norm
        )
        if not result.skipped:
            self.actor_optimizer.step()
        losses = torch.cat([reward_loss.detach().view(1), cost_surrogates.detach()])
        return losses, result.diagnostic_values, result.skipped

    def _actor_step_lean(
        self,
        obs: Tensor,
        action: Tensor,
        old_log_prob: Tensor,
        advantages: Tensor,
        episode_cost: Tensor,
    ) -> tuple[Tensor, Diagnostics, bool]:
        """Write ``-update`` (clipped) into :attr:`actor_grad`; no optimizer step here.

        Linear strategies take the coefficient path: one Gram matrix of the directions (whose
        diagonal also tells whether every direction is finite, and which gives the update's
        norm, hence the clipping factor) and one pass writing the clipped ``-update`` into the
        buffer.
        """
        grads, losses = self.policy_gradients.loss_gradients(
            obs, action, old_log_prob, advantages, self.clip_epsilon, self.entropy_coef
        )
        directions = grads.neg_()  # improvement directions: g = -grad(loss)
        g_r, g_c = directions[0], directions[1:]
        rows = directions.shape[0]
        checks = torch.cat((torch.mm(directions, directions.T).view(-1), losses)).tolist()
        diagonal = checks[: rows * rows : rows + 1]
        # a NaN/inf entry makes its squared norm non-finite (an inf loss has inf directions)
        if not math.isfinite(sum(checks)):
            names = ["reward"] + [f"cost[{k}]" for k in range(rows - 1)]
            nonfinite = [
                name for name, v in zip(names, diagonal, strict=True) if not math.isfinite(v)
            ]
            nonfinite += [
                f"{name} loss"
                for name, value in zip(names, checks[rows * rows :], strict=True)
                if not math.isfinite(value)
            ]
            return self._nonfinite_actor(nonfinite or ["Gram matrix"], losses, {})
        low, high = DIAGONAL_RANGE
        strategy = self.strategy
        if self._linear_strategy and all(low <= v <= high for v in diagonal):
            gram = [checks[row * rows : (row + 1) * rows] for row in range(rows)]
            coefficients, diagnostics = strategy.coefficients(
                gram, episode_cost, validate=not self._strategy_validated
            )
            self._strategy_validated = True
            factor = 1.0
            if self.max_grad_norm is not None:
                factor = clip_factor(update_norm(gram, coefficients), self.max_grad_norm)
            negated = [-factor * c for c in coefficients]
            combine_into(self.actor_grad, list(directions), negated)
            # |update| <= sum_k |c_k| |d_k| (also bounds every entry: finite when small)
            bound = sum(abs(c) * math.sqrt(d) for c, d in zip(negated, diagonal, strict=True))
            if not bound < self._largest_safe and not bool(torch.isfinite(self.actor_grad).all()):
                return self._nonfinite_actor(["update"], losses, diagnostics)
        else:
            update, diagnostics = strategy.aggregate(g_r, g_c, episode_cost)
            if not bool(torch.isfinite(update).all()):
                return self._nonfinite_actor(["update"], losses, diagnostics)
            torch.neg(update, out=self.actor_grad)
            if self.max_grad_norm is not None:
                self._clip(self.actor_grad)
        return losses, diagnostics, False

    def _clip(self, flat: Tensor) -> None:
        """Scale ``flat`` by ``min(1, max_grad_norm / (|flat| + 1e-6))`` (no-op when <= 1)."""
        factor = clip_factor(float(flat.norm()), self.max_grad_norm)
        if factor < 1.0:
            flat.mul_(factor)

    def _nonfinite_actor(
        self, names: list[str], losses: Tensor, diagnostics: Diagnostics
    ) -> tuple[Tensor, Diagnostics, bool]:
        if self.driver.on_nonfinite == "raise":
            raise FloatingPointError(
                f"non-finite values in the policy {', '.join(names)}: parameters were not "
                "updated; check the advantages (or use on_nonfinite='skip')"
            )
        return losses, diagnostics, True

    def _lean_step(
        self,
        obs: Tensor,
        action: Tensor,
        old_log_prob: Tensor,
        advantages: Tensor,
        episode_cost: Tensor,
        value_target: Tensor,
        cost_target: Tensor,
    ) -> tuple[Tensor, Diagnostics, bool, Tensor]:
        """Actor and critic gradients by hand, then one fused Adam step of both."""
        losses, diagnostics, skipped = self._actor_step_lean(
            obs, action, old_log_prob, advantages, episode_cost
        )
        critic_gradients = self.critic_gradients
        critic_losses = critic_gradients.compute(obs, [value_target, cost_target])
        if self.max_grad_norm is not None:
            self._clip(critic_gradients.flat_grad)
        self.adam_steps.step([None if skipped else self.actor_grad_views, critic_gradients.views])
        return losses, diagnostics, skipped, critic_losses

    # -------------------------------------------------------------------------------- update
    def update(self, batch: TensorDictBase, episode_cost: Tensor) -> dict[str, float]:
        """Run the PPO passes on ``batch`` (advantages already computed) and return metrics."""
        data = self.flatten_batch(batch)
        episode_cost = as_episode_cost(episode_cost).reshape(-1)  # float64 (J_c_hat)
        lr_fraction = self._set_learning_rates()
        if self.lean:
            self.adam_steps.refresh()
            self.critic_gradients.attach()
            for param, view in zip(self.driver.params, self.actor_grad_views, strict=True):
                param.grad = view
            self._strategy_validated = False
            self._linear_strategy = getattr(self.strategy, "is_linear", False)
            self._largest_safe = 0.5 * torch.finfo(self.actor_grad.dtype).max
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
                if self.lean:
                    losses, diagnostics, was_skipped, critic_loss = self._lean_step(
                        obs,
                        action,
                        old_log_prob.squeeze(1),
                        advantages,
                        episode_cost,
                        value_target,
                        cost_target,
                    )
                else:
                    losses, diagnostics, was_skipped = self._actor_step(
                        obs, action, old_log_prob.squeeze(1), advantages, episode_cost
                    )
                    critic_loss = self._critic_step(obs, value_target, cost_target)
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
        for k, value in enumerate(losses[1:]):
            metrics["loss/cost" if k == 0 else f"loss/cost_{k}"] = value
        for name, values in diagnostics_seen.items():
            if isinstance(values[0], Tensor):  # from aggregate(); the fast path gives floats
                values = torch.stack(values).detach().double()
            mean = torch.as_tensor(values, dtype=torch.float64).mean(0).reshape(-1).tolist()
            for k, value in enumerate(mean):
                metrics[f"strategy/{name}" if k == 0 else f"strategy/{name}_{k}"] = value
        return metrics

    # ---------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        """Optimizers, update counter and shuffling RNG (networks and strategy are saved by
        their owners, see :class:`gradmanip.trainer.Trainer`)."""
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
        if self.lean:
            self.adam_steps.refresh()
