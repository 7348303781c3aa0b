"""PPO's minibatch step for tanh-MLP networks without the autograd engine.

The generic step (:class:`gradmanip.algos.PPO` with ``lean=False``) runs
:class:`~gradmanip.objectives.SafePPOLoss`, the gradient driver and two ``torch.optim.Adam``
steps. For the default networks (tanh MLPs, :func:`gradmanip.rl.models.make_actor_critic`) this
step computes the same thing by hand:

- the per-objective policy gradients and the critics' gradients by hand-written
  backpropagation (:mod:`gradmanip.fast.mlp_backprop`);
- a linear strategy applied through its coefficients and the directions' Gram matrix, whose
  diagonal is also the finiteness check (non-finite directions never reach the parameters), the
  clipped ``-update`` written into the actor's gradient buffer in one pass;
- actor and critics stepped by one fused Adam call
  (:class:`~gradmanip.fast.fused_adam.FusedAdamSteps`, state kept in the two optimizers).

Its updates equal the generic step's (tests) and it is faster (benchmarks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from gradmanip.driver.step_result import clip_factor, update_norm
from gradmanip.fast.fused_adam import FusedAdamSteps
from gradmanip.fast.mlp_backprop import CriticGradients, GaussianPolicyGradients
from gradmanip.strategies.base import Strategy
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.gram import DIAGONAL_RANGE, combine_into

# a step's strategy diagnostics: Python values (coefficient path) or tensors (aggregate)
Diagnostics = Mapping[str, Value | Tensor]


class LeanPPOStep:
    """One PPO minibatch step (actor by the strategy, both critics) by hand.

    Args:
        policy_net: the actor's ``observation -> (loc, scale)`` tanh MLP.
        critic_nets: the reward and cost value tanh MLPs.
        actor_optimizer, critic_optimizer: ``torch.optim.Adam(fused=True)`` over the actor's and
            the critics' parameters (in the networks' parameter order).
        clip_epsilon, entropy_coef, max_grad_norm: as in :class:`gradmanip.algos.PPO`.
        raise_on_nonfinite: raise FloatingPointError on a non-finite direction or update (else
            the actor step is skipped).
    """

    def __init__(
        self,
        policy_net: nn.Module,
        critic_nets: list[nn.Module],
        actor_optimizer: torch.optim.Adam,
        critic_optimizer: torch.optim.Adam,
        *,
        clip_epsilon: float,
        entropy_coef: float,
        max_grad_norm: float | None,
        raise_on_nonfinite: bool,
    ) -> None:
        self.policy_gradients = GaussianPolicyGradients(policy_net)
        self.critic_gradients = CriticGradients(critic_nets)
        self.policy_params = list(policy_net.parameters())
        self.clip_epsilon = clip_epsilon
        self.entropy_coef = entropy_coef
        self.max_grad_norm = max_grad_norm
        self.raise_on_nonfinite = raise_on_nonfinite
        # -update of the actor (views of one flat buffer, in the parameter order)
        self.actor_grad = torch.zeros(
            self.policy_gradients.numel, dtype=self.policy_params[0].dtype
        )
        self.actor_grad_views = [
            chunk.view_as(p)
            for chunk, p in zip(
                self.actor_grad.split(self.policy_gradients.sizes), self.policy_params, strict=True
            )
        ]
        self._largest_safe = 0.5 * torch.finfo(self.actor_grad.dtype).max
        self._validated = False
        self.adam_steps = FusedAdamSteps(
            [actor_optimizer, critic_optimizer],
            [self.actor_grad_views, self.critic_gradients.views],
        )

    @staticmethod
    def supports(policy_net: nn.Module, critic_nets: list[nn.Module]) -> bool:
        """Whether the networks are the tanh MLPs this step differentiates by hand."""
        return GaussianPolicyGradients.supports(policy_net) and CriticGradients.supports(
            critic_nets
        )

    def begin_update(self) -> None:
        """Before an update's minibatches: re-read the optimizers (learning rates, loaded
        state) and attach the gradient buffers as the parameters' ``.grad``."""
        self.adam_steps.refresh()
        self.critic_gradients.attach()
        for param, view in zip(self.policy_params, self.actor_grad_views, strict=True):
            param.grad = view
        self._validated = False

    def step(
        self,
        strategy: Strategy,
        obs: Tensor,
        action: Tensor,
        old_log_prob: Tensor,
        advantages: Tensor,
        episode_cost: Tensor,
        value_target: Tensor,
        cost_target: Tensor,
    ) -> tuple[Tensor, Diagnostics, bool, Tensor]:
        """(actor losses [1 + K], strategy diagnostics, skipped, critic losses [2]) of one
        minibatch step; ``advantages [B, 1 + K]``: the reward column, then the costs."""
        losses, diagnostics, skipped = self._actor(
            strategy, obs, action, old_log_prob, advantages, episode_cost
        )
        critic_losses = self.critic_gradients.compute(obs, [value_target, cost_target])
        if self.max_grad_norm is not None:
            self._clip(self.critic_gradients.flat_grad)
        self.adam_steps.step([not skipped, True])
        return losses, diagnostics, skipped, critic_losses

    def _actor(
        self,
        strategy: Strategy,
        obs: Tensor,
        action: Tensor,
        old_log_prob: Tensor,
        advantages: Tensor,
        episode_cost: Tensor,
    ) -> tuple[Tensor, Diagnostics, bool]:
        """Write ``-update`` (clipped) into :attr:`actor_grad`; no optimizer step here."""
        grads, losses = self.policy_gradients.loss_gradients(
            obs, action, old_log_prob, advantages, self.clip_epsilon, self.entropy_coef
        )
        directions = grads.neg_()  # improvement directions: g = -grad(loss)
        rows = directions.shape[0]
        checks = torch.cat((torch.mm(directions, directions.T).view(-1), losses)).tolist()
        diagonal = checks[: rows * rows : rows + 1]
        # a NaN/inf entry makes its squared norm non-finite (an inf loss has inf directions)
        if not math.isfinite(sum(checks)):
            names = ["reward"] + [f"cost[{k}]" for k in range(rows - 1)]
            nonfinite = [n for n, v in zip(names, diagonal, strict=True) if not math.isfinite(v)]
            nonfinite += [
                f"{name} loss"
                for name, value in zip(names, checks[rows * rows :], strict=True)
                if not math.isfinite(value)
            ]
            return self._nonfinite(nonfinite or ["Gram matrix"], losses, {})
        low, high = DIAGONAL_RANGE
        if strategy.is_linear and all(low <= v <= high for v in diagonal):
            gram = [checks[row * rows : (row + 1) * rows] for row in range(rows)]
            coefficients, diagnostics = strategy.coefficients(
                gram, episode_cost, validate=not self._validated
            )
            self._validated = True
            factor = 1.0
            if self.max_grad_norm is not None:
                factor = clip_factor(update_norm(gram, coefficients), self.max_grad_norm)
            negated = [-factor * c for c in coefficients]
            combine_into(self.actor_grad, list(directions), negated)
            # |update| <= sum_k |c_k| |d_k| (also bounds every entry: finite when small)
            bound = sum(abs(c) * math.sqrt(d) for c, d in zip(negated, diagonal, strict=True))
            if not bound < self._largest_safe and not bool(torch.isfinite(self.actor_grad).all()):
                return self._nonfinite(["update"], losses, diagnostics)
        else:
            update, diagnostics = strategy.aggregate(directions[0], directions[1:], episode_cost)
            if not bool(torch.isfinite(update).all()):
                return self._nonfinite(["update"], losses, diagnostics)
            torch.neg(update, out=self.actor_grad)
            if self.max_grad_norm is not None:
                self._clip(self.actor_grad)
        return losses, diagnostics, False

    def _clip(self, flat: Tensor) -> None:
        """Scale ``flat`` by ``min(1, max_grad_norm / (|flat| + 1e-6))`` (no-op when <= 1)."""
        factor = clip_factor(float(flat.norm()), self.max_grad_norm)
        if factor < 1.0:
            flat.mul_(factor)

    def _nonfinite(
        self, names: list[str], losses: Tensor, diagnostics: Diagnostics
    ) -> tuple[Tensor, Diagnostics, bool]:
        if self.raise_on_nonfinite:
            raise FloatingPointError(
                f"non-finite values in the policy {', '.join(names)}: parameters were not "
                "updated; check the advantages (or use on_nonfinite='skip')"
            )
        return losses, diagnostics, True
