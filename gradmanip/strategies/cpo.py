"""CPO: Constrained Policy Optimization (Achiam et al., ICML 2017), as a trust-region strategy."""

from __future__ import annotations

import math

from gradmanip.strategies.base import MODE_BOTH, MODE_COST_ONLY, MODE_REWARD_ONLY
from gradmanip.strategies.settings import PerConstraint
from gradmanip.strategies.trust_region import (
    TrustRegionGeometry,
    TrustRegionStep,
    TrustRegionStrategy,
    reward_step_scale,
)

GRADIENT_NORM_TOLERANCE = 1e-6  # case 4: |b|^2 at most this (OmniSafe's threshold)
PARALLEL_TOLERANCE = 1e-10  # A <= this * q: g is parallel to b in the metric


class CPO(TrustRegionStrategy):
    """CPO step (Achiam et al. 2017: the subproblem of Sec. 6.1, Eq. 10; its analytic solution,
    Theorem 2 and Appendix 10.2; the recovery step of Sec. 6.2), for one constraint.

    Solves ``max_d g.d`` subject to ``c + b.d <= 0`` and ``d^T H d / 2 <= delta`` in the ascent
    convention (g the reward gradient, b = -g_c the cost gradient, x = H^-1 g, p = H^-1 b,
    q = g.x, r = g.p, s = b.p, c = J_c_hat - limit), with OmniSafe's case numbers:

    - case 4: ``|b|^2 <= 1e-6`` and c < 0: reward step ``d = sqrt(2 delta / q) x``;
    - ``A = q - r^2 / s``, ``B = 2 delta - c^2 / s``;
    - case 3: c < 0 and B < 0 (the whole trust region is feasible): the reward step;
    - case 0: c >= 0 and B < 0 (no feasible point): recovery ``d = -sqrt(2 delta / s) p``;
    - cases 2 (c < 0) and 1 (c >= 0) with B >= 0: the reward step if it is feasible
      (``c + sqrt(2 delta / q) r <= 0``), else both constraints are active:
      ``d = sqrt(B / A) (x - (r / s) p) - (c / s) p``, i.e. ``d = (x - nu p) / lambda`` with
      ``lambda = sqrt(A / B)`` and ``nu = (lambda c + r) / s``.

    Achiam's appendix writes these formulas for g the gradient of a LOSS (``nu = (lambda c - r)
    / s``); OmniSafe 0.5 applies them to an ascent g, which flips the sign of r in cases 1-2 (a
    negative lambda, or a step that breaks the linearised constraint). This class uses the ascent
    form above, checked against an exact solution of the subproblem.

    Guards: A <= 1e-10 q (g parallel to b) keeps only ``-(c / s) p``; s <= 0 (no direction
    changes the cost) takes the reward step when c < 0 and no step otherwise.

    Line search (Algorithm 1; OmniSafe: fractions 0.8^k, 20 tries): accept when the measured KL
    is at most delta, the cost surrogate rises by at most ``max(-c, 0)`` and, in cases 2-4, the
    reward surrogate did not decrease. One constraint only (K > 1 raises ``ValueError``).
    Diagnostics: ``mode``, ``case`` (0-4), ``cost_excess`` c, ``cost_multiplier`` nu.
    """

    name = "cpo"

    def __init__(
        self,
        cost_limit: PerConstraint = 25.0,
        radius: float = 0.01,
        cost_units: str = "episode",
        episode_length: float = 1000.0,
        backtrack_factor: float = 0.8,
        line_search_steps: int = 20,
    ) -> None:
        if not isinstance(cost_limit, int | float) and len(cost_limit) != 1:
            raise ValueError(
                f"CPO solves for one constraint, got {len(cost_limit)} cost limits; use "
                "strategy 'pcpo' (projection onto every constraint) for K > 1"
            )
        super().__init__(
            cost_limit,
            radius,
            cost_units,
            episode_length,
            backtrack_factor,
            line_search_steps,
            num_constraints=1,
        )

    def _check_count(self, count: int, what: str) -> None:
        if count != 1:
            raise ValueError(
                f"{self._keys[what]!r} carries {count} constraints but CPO solves for exactly "
                "one; use strategy 'pcpo' (projection onto every constraint) for K > 1"
            )

    def _solve(
        self, geometry: TrustRegionGeometry, excess: list[float], radius: float
    ) -> TrustRegionStep:
        metric = geometry.metric
        q, r, s = metric[0][0], -metric[0][1], metric[1][1]
        c = excess[0]
        scale = reward_step_scale(q, radius)

        def result(natural_r: float, natural_c: float, case: int, mode: int, nu: float):
            diagnostics = {"mode": mode, "case": case, "cost_excess": c, "cost_multiplier": nu}
            return self._step([natural_r, natural_c], [0.0, 0.0], excess, case >= 2, diagnostics)

        if not (s > 0 and math.isfinite(s)):
            if c < 0:
                return result(scale, 0.0, 4, MODE_REWARD_ONLY, 0.0)
            return result(0.0, 0.0, 0, MODE_COST_ONLY, 0.0)  # nothing moves the cost
        if geometry.gradient[1][1] <= GRADIENT_NORM_TOLERANCE and c < 0:
            return result(scale, 0.0, 4, MODE_REWARD_ONLY, 0.0)
        a_term = q - r * r / s
        b_term = 2.0 * radius - c * c / s
        if b_term < 0:
            if c < 0:
                return result(scale, 0.0, 3, MODE_REWARD_ONLY, 0.0)
            # recovery: d = -sqrt(2 delta / s) p = sqrt(2 delta / s) x_c
            return result(0.0, math.sqrt(2.0 * radius / s), 0, MODE_COST_ONLY, 0.0)
        case = 2 if c < 0 else 1
        if c + scale * r <= 0:
            return result(scale, 0.0, case, MODE_REWARD_ONLY, 0.0)
        if a_term > PARALLEL_TOLERANCE * q:
            inverse_lambda = math.sqrt(b_term / a_term)
            nu = (c / inverse_lambda + r) / s
        else:  # g parallel to b: the term along x - (r / s) p vanishes
            inverse_lambda, nu = 0.0, 0.0
        # d = inverse_lambda (x - (r / s) p) - (c / s) p, with p = -x_c
        natural_c = inverse_lambda * r / s + c / s
        return result(inverse_lambda, natural_c, case, MODE_BOTH, nu)
