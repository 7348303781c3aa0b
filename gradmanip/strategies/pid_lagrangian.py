"""PID-controlled Lagrange multiplier (CPPO-PID, Stooke et al. 2020)."""

from __future__ import annotations

import torch
from torch import Tensor

from gradmanip.strategies.multiplier import (
    MultiplierStrategy,
    limits_and_initial_multipliers,
    upper_bounds,
)
from gradmanip.strategies.settings import (
    PerConstraint,
    check_finite,
    check_nonnegative,
    check_unit_interval,
    format_values,
)


class PIDLagrangian(MultiplierStrategy):
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
        count, limit, init = limits_and_initial_multipliers(
            cost_limit,
            multiplier_init,
            upper_bound,
            num_constraints,
            "the PID integral term starts at a value >= 0",
        )
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
        self._register_settings(limit, init, upper_bounds(upper_bound, count))
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
