"""Lagrangian weighting with a learned multiplier (PPO-Lag / TRPO-Lag)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gradmanip.strategies.multiplier import (
    MultiplierStrategy,
    limits_and_initial_multipliers,
    upper_bounds,
)
from gradmanip.strategies.settings import (
    PerConstraint,
    check_positive,
    check_unit_interval,
    format_values,
)

_OPTIMIZERS = ("adam", "sgd")


class Lagrangian(MultiplierStrategy):
    """Lagrangian with learned multipliers (PPO-Lag / TRPO-Lag; Ray, Achiam & Amodei 2019,
    "Benchmarking Safe Exploration in Deep RL", Sec. 4.4; OmniSafe ``Lagrange``).

    ``update = (g_r + sum_k lambda_k g_c[k]) / (1 + sum_k lambda_k)``. Each epoch, lambda takes one
    optimizer step of gradient ascent on lambda_k (J_c_hat[k] - b_k) (i.e. descent on
    -lambda (J_c - b)) and is clamped to [0, upper_bound]. ``optimizer="adam"`` reproduces
    ``torch.optim.Adam`` (betas, eps) step for step, its moments kept in buffers; ``"sgd"`` is
    lambda <- lambda + lr (J_c - b). Defaults are OmniSafe's: init 0.001, lr 0.035, Adam.
    Supports any K (one multiplier per constraint; set K with sequences or ``num_constraints``).
    """

    name = "lagrangian"

    def __init__(
        self,
        cost_limit: PerConstraint = 25.0,
        multiplier_init: PerConstraint = 0.001,
        lr: float = 0.035,
        optimizer: str = "adam",
        upper_bound: PerConstraint | None = None,
        betas: tuple[float, float] | list[float] = (0.9, 0.999),
        eps: float = 1e-8,
        num_constraints: int | None = None,
    ) -> None:
        count, limit, init = limits_and_initial_multipliers(
            cost_limit,
            multiplier_init,
            upper_bound,
            num_constraints,
            "Lagrange multipliers are >= 0",
        )
        bound = upper_bounds(upper_bound, count)
        check_positive(lr, "lr")
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {optimizer!r}")
        if len(betas) != 2:
            raise ValueError(f"betas must be two floats in [0, 1), got {betas!r}")
        check_unit_interval(betas[0], "betas[0]")
        check_unit_interval(betas[1], "betas[1]")
        check_positive(eps, "eps")
        super().__init__(num_constraints=count)
        self.lr = float(lr)
        self.optimizer = optimizer
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self._register_settings(limit, init, bound)
        self.register_buffer("multiplier", init.clamp(max=bound))
        self.register_buffer("exp_avg", torch.zeros(count or 1, dtype=torch.float64))
        self.register_buffer("exp_avg_sq", torch.zeros(count or 1, dtype=torch.float64))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def reset(self) -> None:
        """Multipliers back to their initial value, optimizer moments cleared."""
        self.multiplier.copy_(self.multiplier_init.clamp(max=self.upper_bound))
        self.exp_avg.zero_()
        self.exp_avg_sq.zero_()
        self.steps.zero_()

    def _advance(self, episode_cost: Tensor) -> None:
        violation = episode_cost.to(self.multiplier) - self.cost_limit
        if self.optimizer == "sgd":
            self.multiplier.add_(violation, alpha=self.lr)
        else:
            self._adam_step(-violation)
        self.multiplier.clamp_(min=torch.zeros_like(self.upper_bound), max=self.upper_bound)

    def _adam_step(self, grad: Tensor) -> None:
        """One step of ``torch.optim.Adam`` (no weight decay, no amsgrad) on the multipliers."""
        beta1, beta2 = self.betas
        self.steps.add_(1)
        step = int(self.steps)
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = self.lr / (1 - beta1**step)
        denom = (self.exp_avg_sq.sqrt() / math.sqrt(1 - beta2**step)).add_(self.eps)
        self.multiplier.addcdiv_(self.exp_avg, denom, value=-step_size)

    def _settings(self) -> dict[str, object]:
        return {
            "cost_limit": format_values(self.cost_limit),
            "multiplier_init": format_values(self.multiplier_init),
            "lr": self.lr,
            "optimizer": self.optimizer,
            "upper_bound": format_values(self.upper_bound),
            "num_constraints": self.num_constraints,
        }
