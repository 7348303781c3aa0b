"""Natural-gradient (TRPO-style) base algorithm: the PCRPO paper's setting.

One update phase per epoch:

1. Surrogates on the batch, read from the unclipped :class:`~gradmanip.objectives.SafePPOLoss`,
   with ``ratio = pi_theta(a|s) / pi_old(a|s)``:
   reward ``L_r = E[ratio * A_r]`` and, per constraint k, ``L_c[k] = E[ratio * (-A_c[k])]``
   (both to MAXIMISE: improvement directions, see :mod:`gradmanip.strategies.base`).
2. Per-objective natural-gradient steps ``Delta_i = s_i (F + damping I)^-1 grad L_i`` by conjugate
   gradient, each scaled to the KL radius (``0.5 Delta_i^T (F + damping I) Delta_i = max_kl``),
   see :mod:`gradmanip.algos.trust_region`.
3. The strategy combines them: ``u = strategy.aggregate(Delta_r, Delta_c, J_c_hat)`` (PCRPO soft
   switch, CRPO hard switch, Lagrangian weighting ...; cost-only mode is a single cost step).
4. Backtracking line search along ``u`` on the COMBINED SURROGATE
   ``L_comb = sum_i c_i L_i``. Every strategy returns a linear combination
   ``u = sum_i w_i Delta_i`` (w recovered by least squares on the span of the Delta_i), so with
   ``c_i = w_i s_i`` one has ``u = (F + damping I)^-1 grad L_comb``: ``u`` is exactly the natural
   gradient step of ``L_comb``, whose expected improvement ``grad L_comb . u`` is positive. For a
   single active objective (reward-only or cost-only mode) ``L_comb`` is that objective's
   surrogate up to a positive factor, i.e. plain TRPO. The search also enforces the KL bound
   ``mean KL(pi_old || pi_new) <= kl_slack * max_kl``.
5. Reward and cost critics are fitted by regression on their value targets (Adam minibatches,
   L2 penalty ``critic_l2 * |phi|^2`` as in the authors' code).

Trust-region rules (:class:`~gradmanip.strategies.TrustRegionStrategy`: CPO, PCPO) replace
steps 2-4: the base hands them the unscaled natural directions' geometry in the Fisher metric and
runs their own line search (see :meth:`NaturalGradient._trust_region_update`).

Defaults follow the common on-policy protocol (max_kl 0.01, CG 10 iterations, damping 0.1, critic
lr 1e-3, minibatch 128); the paper's own runs use ``max_kl=0.05``. The trust-region pieces (CG,
Fisher-vector products, the line search) live in :mod:`gradmanip.algos.trust_region` and the critic
fitting of step 5 in :mod:`gradmanip.algos.critic_regression`; this module is the update phase,
its checks and checkpoint state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor

from gradmanip.algos.critic_regression import CriticRegression
from gradmanip.algos.settings import check_float, check_int
from gradmanip.algos.trust_region import (
    FisherVectorProduct,
    LineSearchResult,
    backtracking_line_search,
    conjugate_gradient,
    constrained_line_search,
    flat_grad,
    gaussian_kl,
    kl_scaled_step,
)
from gradmanip.objectives.safe_ppo_loss import SafePPOLoss
from gradmanip.rl.advantages import ON_POLICY_KEYS
from gradmanip.rl.metric_names import constraint_columns
from gradmanip.rl.models import ActorCritic
from gradmanip.strategies.base import Strategy, as_episode_cost
from gradmanip.strategies.delayed import DelayedSafety
from gradmanip.strategies.diagnostics import Value, as_tensors
from gradmanip.strategies.trust_region import (
    TrustRegionGeometry,
    TrustRegionStrategy,
    reward_step_scale,
)

__all__ = ["NaturalGradient", "metric_rule", "span_coefficients"]


def metric_rule(strategy: Strategy) -> TrustRegionStrategy | None:
    """The trust-region rule that decides this epoch's step, if any: the strategy itself, or
    the rule inside :class:`~gradmanip.strategies.DelayedSafety` once its warm-up is over (during
    the warm-up the base takes the plain reward step, i.e. TRPO)."""
    if isinstance(strategy, TrustRegionStrategy):
        return strategy
    if (
        isinstance(strategy, DelayedSafety)
        and isinstance(strategy.strategy, TrustRegionStrategy)
        and strategy.safety_active
    ):
        return strategy.strategy
    return None


def span_coefficients(update: Tensor, directions: Tensor) -> Tensor:
    """Least-squares coefficients w [M] with ``update ~= w @ directions`` (directions [M, P]).

    Solved in float64 with an SVD-based least-squares driver, so collinear or zero directions
    are handled (minimum-norm solution).
    """
    solution = torch.linalg.lstsq(
        directions.T.double(), update.double().unsqueeze(1), driver="gelsd"
    ).solution
    return solution.squeeze(1).to(update.dtype)


class NaturalGradient:
    """Per-objective natural-gradient steps combined by a gradient-manipulation strategy.

    TRPO-Lagrangian, CRPO and PCRPO are this class with the strategies ``"lagrangian"``,
    ``"hard_switch"`` and ``"soft_switch"``; ``"reward_only"`` gives plain TRPO; ``"cpo"`` and
    ``"pcpo"`` give CPO and PCPO (trust-region rules, solved in the Fisher metric).

    Args:
        actor_critic: networks from :func:`gradmanip.rl.models.make_actor_critic`.
        strategy: a :class:`gradmanip.strategies.base.Strategy` (its ``aggregate`` is called with
            the KL-scaled steps ``Delta_r`` [P], ``Delta_c`` [K, P] and ``J_c_hat`` [K]).
        max_kl: trust-region radius (mean KL per state).
        cg_iters, cg_residual_tol: conjugate-gradient budget and stopping tolerance.
        damping: ``lambda`` in ``(F + lambda I) x = g``.
        line_search_steps, backtrack_factor: fractions ``backtrack_factor^k``, k < steps.
        accept_ratio: minimum actual / expected improvement of an accepted fraction.
        kl_slack: accepted steps satisfy ``mean KL <= kl_slack * max_kl``. The default 1.5 is the
            tolerance of the original TRPO implementation (the step is sized on a quadratic KL
            model, and the measured KL of a full step exceeds it by third-order terms);
            1.0 makes the bound strict.
        fisher_fraction: fraction of the batch used for the Fisher-vector products (an evenly
            strided subsample); 1.0 (default) uses the full batch, as the authors do.
        critic_epochs, critic_batch_size, critic_lr, critic_l2: critic regression settings.
        seed: seed of the critic minibatch shuffling (None: nondeterministic).
    """

    def __init__(
        self,
        actor_critic: ActorCritic,
        strategy: Strategy,
        *,
        max_kl: float = 0.01,
        cg_iters: int = 10,
        cg_residual_tol: float = 1e-10,
        damping: float = 0.1,
        line_search_steps: int = 10,
        backtrack_factor: float = 0.5,
        accept_ratio: float = 0.1,
        kl_slack: float = 1.5,
        fisher_fraction: float = 1.0,
        critic_epochs: int = 10,
        critic_batch_size: int = 128,
        critic_lr: float = 1e-3,
        critic_l2: float = 1e-3,
        seed: int | None = None,
    ) -> None:
        if not isinstance(actor_critic, ActorCritic):
            raise TypeError(
                f"actor_critic must be an ActorCritic (gradmanip.rl.models.make_actor_critic), "
                f"got {type(actor_critic).__name__}"
            )
        if not callable(getattr(strategy, "aggregate", None)):
            raise TypeError(
                f"strategy must provide aggregate(g_r, g_c, episode_cost) "
                f"(a gradmanip.strategies Strategy), got {type(strategy).__name__}"
            )
        self.actor_critic = actor_critic
        self.strategy = strategy
        self.max_kl = check_float("max_kl", max_kl, 0.0, math.inf, open_low=True)
        self.cg_iters = check_int("cg_iters", cg_iters, 1)
        self.cg_residual_tol = check_float(
            "cg_residual_tol", cg_residual_tol, 0.0, math.inf, open_low=True
        )
        self.damping = check_float("damping", damping, 0.0, math.inf, open_low=False)
        self.line_search_steps = check_int("line_search_steps", line_search_steps, 1)
        self.backtrack_factor = check_float(
            "backtrack_factor", backtrack_factor, 0.0, 1.0 - 1e-12, open_low=True
        )
        self.accept_ratio = check_float("accept_ratio", accept_ratio, 0.0, 1.0, open_low=False)
        self.kl_slack = check_float("kl_slack", kl_slack, 1.0, math.inf, open_low=False)
        self.fisher_fraction = check_float(
            "fisher_fraction", fisher_fraction, 0.0, 1.0, open_low=True
        )
        self.critic_epochs = check_int("critic_epochs", critic_epochs, 0)
        self.critic_batch_size = check_int("critic_batch_size", critic_batch_size, 1)
        self.critic_lr = check_float("critic_lr", critic_lr, 0.0, math.inf, open_low=True)
        self.critic_l2 = check_float("critic_l2", critic_l2, 0.0, math.inf, open_low=False)
        self.seed = seed

        self.policy_params = list(actor_critic.policy_net.parameters())
        self.loss_module = SafePPOLoss(actor_critic.actor, clip_epsilon=None)
        self._episode_length: float | None = None  # the last measured mean episode length
        self._generator = torch.Generator()
        if seed is not None:
            self._generator.manual_seed(seed)
        else:
            self._generator.seed()
        self._critics = CriticRegression(
            actor_critic,
            epochs=self.critic_epochs,
            batch_size=self.critic_batch_size,
            lr=self.critic_lr,
            l2=self.critic_l2,
            generator=self._generator,
        )
        self.critic_optimizer = self._critics.optimizer

    # ------------------------------------------------------------------------------- update
    def update(
        self, batch: TensorDictBase, episode_cost: Tensor, episode_length: float | None = None
    ) -> dict[str, float]:
        """One policy update (natural-gradient steps, strategy, line search) and critic fitting.

        ``batch`` is a flat [N] TensorDict with ``"observation"``, ``"action"``,
        ``"action_log_prob"`` (behaviour policy), ``"advantage"`` [N, 1], ``"cost_advantage"``
        [N, K], ``"value_target"`` [N, 1] and ``"cost_value_target"`` [N, K];
        ``episode_cost`` is J_c_hat [K]; ``episode_length`` the mean length of the episodes it
        was measured on (read by trust-region strategies in per-step cost units; the last known
        length, else the strategy's setting, stands in when it is None or NaN). Returns scalar
        metrics (policy step, line search, critic losses ``loss/value``, ``loss/cost_value``
        after fitting (``*_before``: before), ``strategy/<name>`` diagnostics, per constraint
        ``strategy/<name>_<k>`` when K > 1: see :mod:`gradmanip.rl.metric_names`).
        """
        obs, action, old_log_prob, adv_r, adv_c = self._read_batch(batch)
        episode_cost = self._check_episode_cost(episode_cost, adv_c.shape[1])
        self._check_cost_critic(obs, adv_c.shape[1])
        if episode_length is not None and episode_length > 0 and math.isfinite(episode_length):
            self._episode_length = float(episode_length)
        metrics = self._update_policy(obs, action, old_log_prob, adv_r, adv_c, episode_cost)
        metrics.update(
            self._critics.fit(
                obs, batch.get("value_target").reshape(-1), batch.get("cost_value_target")
            )
        )
        return metrics

    def _update_policy(
        self,
        obs: Tensor,
        action: Tensor,
        old_log_prob: Tensor,
        adv_r: Tensor,
        adv_c: Tensor,
        episode_cost: Tensor,
    ) -> dict[str, float]:
        net, params = self.actor_critic.policy_net, self.policy_params
        batch = TensorDict(
            observation=obs,
            action=action,
            action_log_prob=old_log_prob,
            advantage=adv_r[:, None],
            cost_advantage=adv_c,
            batch_size=[len(obs)],
        )
        with torch.no_grad():
            old_loc, old_scale = net(obs)
        rule = metric_rule(self.strategy)
        if rule is not None:
            return self._trust_region_update(batch, rule, episode_cost, old_loc, old_scale)
        grads, steps, scales = self._natural_steps(batch)
        update, diagnostics = self.strategy.aggregate(steps[0], steps[1:], episode_cost)
        weights = span_coefficients(update, steps) * scales  # L_comb = sum_i weights_i L_i

        def evaluate() -> tuple[Tensor, Tensor]:
            objective = self._surrogates(batch) @ weights
            loc, scale = net(obs)
            return objective, gaussian_kl(old_loc, old_scale, loc, scale).mean()

        search = backtracking_line_search(
            params,
            update,
            float((weights @ grads) @ update),
            evaluate,
            self.max_kl,
            max_steps=self.line_search_steps,
            backtrack_factor=self.backtrack_factor,
            accept_ratio=self.accept_ratio,
            kl_slack=self.kl_slack,
        )
        return self._policy_metrics(search, steps, update, weights, diagnostics)

    def _trust_region_update(
        self,
        batch: TensorDict,
        rule: TrustRegionStrategy,
        episode_cost: Tensor,
        old_loc: Tensor,
        old_scale: Tensor,
    ) -> dict[str, float]:
        """A trust-region rule's step (CPO, PCPO): unscaled natural directions
        ``x_i = (F + damping I)^-1 g_i``, their geometry (metric Gram ``x_i^T M x_j`` from the
        Fisher-vector products, ``g_i . x_j``, ``g_i . g_j``), the rule's step
        ``d = sum_i a_i x_i + sum_i b_i g_i`` for the radius ``max_kl``, then the rule's line
        search (measured KL <= max_kl, no ``kl_slack``; cost and reward tests of the rule)."""
        net, obs = self.actor_critic.policy_net, batch.get("observation")
        grads, fvp = self._gradients_and_fisher(batch)
        naturals = torch.stack(
            [conjugate_gradient(fvp, g, self.cg_iters, self.cg_residual_tol) for g in grads]
        )
        curvatures = torch.stack([fvp(x) for x in naturals])
        if not (torch.isfinite(naturals).all() and torch.isfinite(curvatures).all()):
            raise FloatingPointError(
                "non-finite natural direction: check the batch advantages and the damping "
                f"setting (damping={self.damping})"
            )
        n64, c64, g64 = naturals.double(), curvatures.double(), grads.double()
        metric = n64 @ c64.T
        geometry = TrustRegionGeometry(
            ((metric + metric.T) / 2).tolist(), (g64 @ n64.T).tolist(), (g64 @ g64.T).tolist()
        )
        step = rule.coefficients_in_metric(
            geometry, episode_cost, self.max_kl, self._episode_length
        )
        natural = torch.tensor(step.natural, dtype=torch.float64)
        gradient = torch.tensor(step.gradient, dtype=torch.float64)
        update = (natural @ n64 + gradient @ g64).to(grads.dtype)
        weights = torch.tensor(step.weights, dtype=torch.float64)

        def evaluate() -> tuple[Tensor, Tensor]:
            loc, scale = net(obs)
            return self._surrogates(batch), gaussian_kl(old_loc, old_scale, loc, scale).mean()

        search = constrained_line_search(
            self.policy_params,
            update,
            evaluate,
            self.max_kl,
            max_cost_increase=step.max_cost_increase,
            require_reward_gain=step.require_reward_gain,
            max_steps=step.max_steps,
            backtrack_factor=step.backtrack_factor,
            expected_improvement=float(weights @ (g64 @ update.double())),
        )
        change = torch.tensor(search.changes or [0.0] * len(weights), dtype=torch.float64)
        reward_step = reward_step_scale(geometry.metric[0][0], self.max_kl) * naturals[0]
        search = replace(search, improvement=float(weights @ change))
        diagnostics = dict(step.diagnostics)
        if rule is not self.strategy:  # inside DelayedSafety, after its warm-up
            diagnostics["safety_active"] = 1
        metrics = self._policy_metrics(
            search,
            torch.stack([reward_step, *naturals[1:]]),
            update,
            weights,
            as_tensors(diagnostics),
        )
        metrics["reward_improvement"] = float(change[0])
        metrics["cost_improvement"] = float(change[1:].sum())
        return metrics

    def _surrogates(self, batch: TensorDict) -> Tensor:
        """The M = 1 + K surrogates to maximise, ``E[ratio * A_r]`` and ``E[ratio * (-A_c[k])]``,
        read from the unclipped :class:`~gradmanip.objectives.SafePPOLoss`."""
        losses = self.loss_module(batch)
        return -torch.cat([losses.get("loss_objective").view(1), losses.get("loss_cost_objective")])

    def _gradients_and_fisher(self, batch: TensorDict) -> tuple[Tensor, FisherVectorProduct]:
        """Surrogate gradients g_i [M, P] and the Fisher-vector product of the batch."""
        params = self.policy_params
        surrogates = self._surrogates(batch)
        grads = torch.stack([flat_grad(s, params, retain_graph=True) for s in surrogates])
        fvp = FisherVectorProduct(self._fisher_kl(batch.get("observation")), params, self.damping)
        return grads, fvp

    def _natural_steps(self, batch: TensorDict) -> tuple[Tensor, Tensor, Tensor]:
        """Surrogate gradients g_i [M, P], KL-scaled steps Delta_i = s_i (F + damping I)^-1 g_i
        [M, P] and scales s_i [M] of the M = 1 + K surrogates."""
        grads, fvp = self._gradients_and_fisher(batch)
        steps, scales = [], []
        for g in grads:
            x = conjugate_gradient(fvp, g, self.cg_iters, self.cg_residual_tol)
            step, step_scale = kl_scaled_step(x, fvp(x), self.max_kl)
            steps.append(step)
            scales.append(step_scale)
        steps_t = torch.stack(steps)
        if not torch.isfinite(steps_t).all():
            raise FloatingPointError(
                "non-finite natural-gradient step: check the batch advantages and the damping "
                f"setting (damping={self.damping})"
            )
        return grads, steps_t, torch.tensor(scales, dtype=steps_t.dtype)

    def _fisher_kl(self, obs: Tensor) -> Tensor:
        """Mean KL(pi_detached || pi_theta), whose Hessian at theta is the Fisher matrix."""
        if self.fisher_fraction < 1.0:
            obs = obs[:: max(1, round(1.0 / self.fisher_fraction))]
        loc, scale = self.actor_critic.policy_net(obs)
        return gaussian_kl(loc.detach(), scale.detach(), loc, scale).mean()

    def _policy_metrics(
        self,
        search: LineSearchResult,
        steps: Tensor,
        update: Tensor,
        weights: Tensor,
        diagnostics: Mapping[str, Value | Tensor],
    ) -> dict[str, float]:
        metrics = {
            "kl": search.kl,
            "step_accepted": float(search.accepted),
            "step_fraction": search.fraction,
            "line_search_steps": float(search.steps),
            "expected_improvement": search.expected_improvement,
            "surrogate_improvement": search.improvement,
            "reward_step_norm": float(steps[0].norm()),
            "cost_step_norm": float(steps[1:].norm()),
            "update_norm": float(update.norm()),
            "reward_weight": float(weights[0]),
            "cost_weight": float(weights[1:].sum()),
        }
        for name, value in diagnostics.items():
            value = torch.as_tensor(value).detach().reshape(-1)
            metrics.update(constraint_columns(f"strategy/{name}", value.tolist()))
        return metrics

    # ---------------------------------------------------------------------------- checking
    def _read_batch(self, batch: TensorDictBase) -> tuple[Tensor, ...]:
        missing = [k for k in ON_POLICY_KEYS if k not in batch]
        if missing:
            raise KeyError(
                f"batch lacks {missing}; NaturalGradient.update needs {list(ON_POLICY_KEYS)} "
                "(compute advantages with gradmanip.rl.advantages first)"
            )
        if batch.batch_dims != 1:
            raise ValueError(
                f"batch must be a flat [N] TensorDict, got batch_size {tuple(batch.batch_size)}; "
                "use batch.reshape(-1)"
            )
        n = batch.batch_size[0]
        obs = batch.get("observation")
        action = batch.get("action")
        old_log_prob = batch.get("action_log_prob").detach().reshape(n)
        adv_r = batch.get("advantage").reshape(n)
        adv_c = batch.get("cost_advantage").reshape(n, -1)
        if batch.get("cost_value_target").reshape(n, -1).shape != adv_c.shape:
            raise ValueError(
                "batch['cost_value_target'] must have one column per constraint, like "
                f"batch['cost_advantage'] ({adv_c.shape[1]})"
            )
        for name, value in (("advantage", adv_r), ("cost_advantage", adv_c)):
            if not torch.isfinite(value).all():
                raise ValueError(f"batch[{name!r}] contains non-finite values")
        return obs, action, old_log_prob, adv_r, adv_c

    def _check_cost_critic(self, obs: Tensor, num_constraints: int) -> None:
        with torch.no_grad():
            width = self._critics.cost_net(obs[:1]).shape[-1]
        if width != num_constraints:
            raise ValueError(
                f"the cost critic predicts {width} value(s) per state but 'cost_advantage' has "
                f"{num_constraints} column(s); give the cost critic one output per constraint"
            )

    def _check_episode_cost(self, episode_cost: Tensor, num_constraints: int) -> Tensor:
        episode_cost = as_episode_cost(episode_cost).reshape(-1)  # float64 (J_c_hat)
        if episode_cost.shape != (num_constraints,):
            raise ValueError(
                f"episode_cost must have shape [K] = [{num_constraints}] (one entry per column of "
                f"'cost_advantage'), got {tuple(episode_cost.shape)}"
            )
        return episode_cost

    # ------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Critic optimizer, shuffling RNG state and the last measured episode length (networks
        and strategy are saved by their owners)."""
        return {
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "generator": self._generator.get_state(),
            "episode_length": self._episode_length,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self._generator.set_state(state["generator"])
        self._episode_length = state.get("episode_length")  # absent from older checkpoints

    def __repr__(self) -> str:
        settings = (
            "max_kl",
            "cg_iters",
            "damping",
            "line_search_steps",
            "backtrack_factor",
            "accept_ratio",
            "kl_slack",
            "fisher_fraction",
            "critic_epochs",
            "critic_batch_size",
            "critic_lr",
            "critic_l2",
        )
        body = ", ".join(f"{name}={getattr(self, name)}" for name in settings)
        return f"NaturalGradient(strategy={self.strategy!r}, {body})"
