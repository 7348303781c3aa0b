"""Lagrangian weighting: learned multiplier (gradient ascent) and PID-controlled multiplier.

Both combine ``update = (g_r + sum_k lambda_k g_c[k]) / (1 + sum_k lambda_k)`` (the normalised
Lagrangian of OmniSafe's PPO-Lag / CPPO-PID), one multiplier lambda_k >= 0 per constraint. The
multipliers change only in :meth:`update_state` (once per epoch); their state lives in buffers,
so ``state_dict()`` / ``load_state_dict()`` restore identical subsequent behaviour.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gradmanip.strategies.base import MODE_BOTH, MODE_REWARD_ONLY, Strategy
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.linear import Gram
from gradmanip.strategies.settings import (
    PerConstraint,
    check_finite,
    check_nonnegative,
    check_positive,
    check_unit_interval,
    constraint_count,
    format_values,
    per_constraint,
)

_OPTIMIZERS = ("adam", "sgd")


def _constraints(count: int | None, num_constraints: int | None) -> int | None:
    """K from the settings (None: scalar settings only, K is fixed by the first use)."""
    if num_constraints is not None and count is not None and num_constraints != count:
        raise ValueError(
            f"num_constraints={num_constraints} but the per-constraint settings have {count} "
            "values; make them agree (or omit num_constraints)"
        )
    return count or num_constraints


def _upper_bound(upper_bound: PerConstraint | None, count: int | None) -> Tensor:
    if upper_bound is None:
        return torch.full((count or 1,), math.inf, dtype=torch.float64)
    bound = per_constraint(upper_bound, "upper_bound", count)
    check_nonnegative(bound, "upper_bound", "it caps a multiplier that is itself >= 0")
    return bound


class _MultiplierStrategy(Strategy):
    """Shared combination, diagnostics and sizing of the Lagrangian strategies.

    With scalar settings only (and no ``num_constraints``), the per-constraint buffers hold one
    entry until the first :meth:`update_state` or combination, which fixes K to the number of
    constraints it sees (every constraint starting from the same settings); the fixed K is saved
    with ``state_dict()``.
    """

    diagnostic_names = ("mode", "lagrange_multiplier", "reward_weight")
    multiplier: Tensor

    def _fit_constraints(self, count: int) -> None:
        """Fix K = ``count`` on first use: every per-constraint buffer (last dim) is broadcast."""
        if self._num_constraints is not None:
            return
        for name, buffer in self._buffers.items():
            if buffer is not None and buffer.ndim >= 1 and buffer.shape[-1] == 1:
                self._buffers[name] = buffer.expand(*buffer.shape[:-1], count).clone()
        self._num_constraints = count

    def get_extra_state(self) -> dict[str, int | None]:
        return {"num_constraints": self._num_constraints}

    def set_extra_state(self, state: dict[str, int | None]) -> None:
        """K was already fixed in :meth:`_load_from_state_dict`, before the buffers loaded."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        extra = state_dict.get(prefix + "_extra_state")
        count = extra.get("num_constraints") if isinstance(extra, dict) else None
        if count is not None:
            self._check_count(count, "episode_cost")
            self._fit_constraints(count)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _update_state(self, episode_cost: Tensor) -> None:
        self._fit_constraints(episode_cost.shape[0])
        self._advance(episode_cost)

    def _advance(self, episode_cost: Tensor) -> None:
        raise NotImplementedError

    def _coefficients(
        self, gram: Gram, episode_cost: Tensor
    ) -> tuple[list[float], dict[str, Value]]:
        self._fit_constraints(len(gram) - 1)
        multiplier = self.multiplier.tolist()
        normaliser = 1.0 + sum(multiplier)
        coefficients = [1.0 / normaliser] + [value / normaliser for value in multiplier]
        mode = MODE_REWARD_ONLY if not any(multiplier) else MODE_BOTH
        diagnostics = {
            "mode": mode,
            "lagrange_multiplier": multiplier,
            "reward_weight": coefficients[0],
        }
        return coefficients, diagnostics


class Lagrangian(_MultiplierStrategy):
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
        count = _constraints(
            constraint_count(
                cost_limit=cost_limit, multiplier_init=multiplier_init, upper_bound=upper_bound
            ),
            num_constraints,
        )
        limit = per_constraint(cost_limit, "cost_limit", count)
        check_finite(limit, "cost_limit")
        check_nonnegative(limit, "cost_limit", "a cost limit is a budget on a non-negative cost")
        init = per_constraint(multiplier_init, "multiplier_init", count)
        check_finite(init, "multiplier_init")
        check_nonnegative(init, "multiplier_init", "Lagrange multipliers are >= 0")
        bound = _upper_bound(upper_bound, count)
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
        self.register_buffer("cost_limit", limit, persistent=False)
        self.register_buffer("multiplier_init", init, persistent=False)
        self.register_buffer("upper_bound", bound, persistent=False)
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


class PIDLagrangian(_MultiplierStrategy):
    """PID-controlled multiplier (Stooke, Achiam & Abbeel 2020, "Responsive Safety in RL by PID
    Lagrangian Methods", Alg. 2; the parametrisation of OmniSafe's ``PIDLagrangian``).

    Per epoch, with Delta = J_c_hat - b (per constraint):

    - integral  I <- max(0, I + k_i Delta)                (starts at ``multiplier_init``)
    - P term    p <- a_p p + (1 - a_p) Delta              (EMA, ``p_ema_alpha``)
    - D term    c <- a_d c + (1 - a_d) J_c_hat;  d = max(0, c - c_old), c_old = c from up to
      ``d_delay`` epochs ago
    - lambda = clamp(k_p p + I + k_d d, 0, upper_bound)

    Defaults kp 0.1, ki 0.01, kd 0.01, d_delay 10, EMA 0.95 (OmniSafe). The multiplier is 0 before
    the first update. Supports any K: one controller per constraint, K fixed as for
    :class:`Lagrangian`.
    """

    name = "pid_lagrangian"

    def __init__(
        self,
        cost_limit: PerConstraint = 25.0,
        kp: float = 0.1,
        ki: float = 0.01,
        kd: float = 0.01,
        multiplier_init: PerConstraint = 0.001,
        d_delay: int = 10,
        p_ema_alpha: float = 0.95,
        d_ema_alpha: float = 0.95,
        upper_bound: PerConstraint | None = None,
        num_constraints: int | None = None,
    ) -> None:
        count = _constraints(
            constraint_count(
                cost_limit=cost_limit, multiplier_init=multiplier_init, upper_bound=upper_bound
            ),
            num_constraints,
        )
        limit = per_constraint(cost_limit, "cost_limit", count)
        check_finite(limit, "cost_limit")
        check_nonnegative(limit, "cost_limit", "a cost limit is a budget on a non-negative cost")
        init = per_constraint(multiplier_init, "multiplier_init", count)
        check_finite(init, "multiplier_init")
        check_nonnegative(init, "multiplier_init", "the PID integral term starts at a value >= 0")
        for gain_name, gain in (("kp", kp), ("ki", ki), ("kd", kd)):
            if isinstance(gain, bool) or not isinstance(gain, (int, float)):
                raise TypeError(f"{gain_name} must be a float, got {gain!r}")
            check_finite(torch.tensor(float(gain)), gain_name)
            check_nonnegative(float(gain), gain_name, "PID gains are >= 0")
        if isinstance(d_delay, bool) or not isinstance(d_delay, int) or d_delay < 1:
            raise ValueError(f"d_delay must be a positive int, got {d_delay!r}")
        check_unit_interval(p_ema_alpha, "p_ema_alpha")
        check_unit_interval(d_ema_alpha, "d_ema_alpha")
        super().__init__(num_constraints=count)
        self.kp, self.ki, self.kd = float(kp), float(ki), float(kd)
        self.d_delay = d_delay
        self.p_ema_alpha, self.d_ema_alpha = float(p_ema_alpha), float(d_ema_alpha)
        zeros = torch.zeros(count or 1, dtype=torch.float64)
        self.register_buffer("cost_limit", limit, persistent=False)
        self.register_buffer("multiplier_init", init, persistent=False)
        self.register_buffer("upper_bound", _upper_bound(upper_bound, count), persistent=False)
        self.register_buffer("multiplier", zeros.clone())
        self.register_buffer("integral", init.clone())
        self.register_buffer("delta_p", zeros.clone())
        self.register_buffer("cost_d", zeros.clone())
        self.register_buffer("cost_history", torch.zeros(d_delay, count or 1, dtype=torch.float64))
        self.register_buffer("history_length", torch.ones((), dtype=torch.int64))

    def reset(self) -> None:
        """Controller back to its initial state (multiplier 0, integral = multiplier_init)."""
        self.multiplier.zero_()
        self.integral.copy_(self.multiplier_init)
        self.delta_p.zero_()
        self.cost_d.zero_()
        self.cost_history.zero_()
        self.history_length.fill_(1)

    def _advance(self, episode_cost: Tensor) -> None:
        cost = episode_cost.to(self.multiplier)
        delta = cost - self.cost_limit
        self.integral.add_(delta, alpha=self.ki).clamp_(min=0)
        self.delta_p.mul_(self.p_ema_alpha).add_(delta, alpha=1 - self.p_ema_alpha)
        self.cost_d.mul_(self.d_ema_alpha).add_(cost, alpha=1 - self.d_ema_alpha)
        derivative = (self.cost_d - self.cost_history[0]).clamp_(min=0)
        output = self.kp * self.delta_p + self.integral + self.kd * derivative
        self.multiplier.copy_(output.clamp(min=0).minimum(self.upper_bound))
        self._remember(self.cost_d)

    def _remember(self, value: Tensor) -> None:
        """Append to the bounded history (oldest entry first), like ``deque(maxlen=d_delay)``."""
        length = int(self.history_length)
        if length < self.d_delay:
            self.cost_history[length] = value
            self.history_length.add_(1)
        else:
            self.cost_history.copy_(self.cost_history.roll(-1, dims=0))
            self.cost_history[-1] = value

    def _settings(self) -> dict[str, object]:
        return {
            "cost_limit": format_values(self.cost_limit),
            "kp": self.kp,
            "ki": self.ki,
            "kd": self.kd,
            "multiplier_init": format_values(self.multiplier_init),
            "d_delay": self.d_delay,
            "p_ema_alpha": self.p_ema_alpha,
            "d_ema_alpha": self.d_ema_alpha,
            "upper_bound": format_values(self.upper_bound),
            "num_constraints": self.num_constraints,
        }
