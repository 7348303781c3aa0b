"""PCPO: Projection-based Constrained Policy Optimization (Yang et al., ICLR 2020)."""

from __future__ import annotations

from gradmanip.strategies.base import MODE_BOTH, MODE_COST_ONLY, MODE_REWARD_ONLY
from gradmanip.strategies.settings import PerConstraint
from gradmanip.strategies.trust_region import (
    TrustRegionGeometry,
    TrustRegionStep,
    TrustRegionStrategy,
    nonnegative_projection,
    reward_step_scale,
)

PROJECTIONS = ("kl", "l2")


class PCPO(TrustRegionStrategy):
    """PCPO step (Yang et al. 2020, the two-step problem of Sec. 3 and its closed-form update in
    Sec. 4, with L = H for the KL projection and L = I for the L2 projection).

    A reward step ``d_r = sqrt(2 delta / q) x`` on the trust radius, then its projection onto the
    linearised constraint set ``{d: c_k + b_k . d <= 0}`` (ascent convention, b_k = -g_c[k],
    p_k = H^-1 b_k, q = g.x, r_k = g.p_k, s_k = b_k.p_k, c_k = J_c_hat[k] - limit_k):

    - ``projection="kl"``: ``d = d_r - max(0, (sqrt(2 delta / q) r + c) / s) p``;
    - ``projection="l2"``: ``d = d_r - max(0, (b.d_r + c) / (b.b)) b``.

    K > 1: the JOINT projection onto the intersection of the K half-spaces in the same metric,
    ``d = d_r - sum_k nu_k p_k`` (or ``b_k``) with nu >= 0 solving the dual exactly on supports
    (:func:`~gradmanip.strategies.trust_region.nonnegative_projection`); it equals the paper's
    formula for K = 1, and unlike a sequential projection it never leaves an earlier constraint
    violated. Guards: q <= 0 gives ``d_r = 0``; a constraint with s_k <= 0 (b.b <= 0 for L2) is
    left out of the projection.

    OmniSafe 0.5 puts ``H x`` (about g) instead of x in the first term (``H_inv_g =
    self._fvp(x)``), so its step matches neither the paper nor the KL bound; this class follows
    the paper. Line search (OmniSafe: fractions 0.8^k, up to 200 tries): accept when the measured
    KL is at most delta and every cost surrogate rises by at most ``max(-c_k, 0)``.
    Diagnostics: ``mode``, ``projected`` (whether the projection moved d_r), ``cost_excess`` c [K],
    ``cost_multiplier`` nu [K].
    """

    name = "pcpo"
    diagnostic_names = ("mode", "projected", "cost_excess", "cost_multiplier")

    def __init__(
        self,
        cost_limit: PerConstraint = 25.0,
        radius: float = 0.01,
        projection: str = "kl",
        cost_units: str = "episode",
        episode_length: float = 1000.0,
        backtrack_factor: float = 0.8,
        line_search_steps: int = 200,
    ) -> None:
        if projection not in PROJECTIONS:
            raise ValueError(
                f"projection must be one of {PROJECTIONS}, got {projection!r} ('kl': in the "
                "Fisher metric; 'l2': Euclidean)"
            )
        super().__init__(
            cost_limit, radius, cost_units, episode_length, backtrack_factor, line_search_steps
        )
        self.projection = projection

    def _solve(
        self, geometry: TrustRegionGeometry, excess: list[float], radius: float
    ) -> TrustRegionStep:
        size = geometry.size
        scale = reward_step_scale(geometry.metric[0][0], radius)
        constraints = range(1, size)
        if self.projection == "kl":
            # b_k . d_r = scale * r_k = -scale * G[0][k]; S_kj = b_k . p_j = G[k][j]
            matrix = [[geometry.metric[k][j] for j in constraints] for k in constraints]
            moved = [-scale * geometry.metric[0][k] for k in constraints]
        else:
            # b_k . d_r = scale * b_k . x_r = -scale * (g_c[k] . x_r); S_kj = b_k . b_j
            matrix = [[geometry.gradient[k][j] for j in constraints] for k in constraints]
            moved = [-scale * geometry.mixed[k][0] for k in constraints]
        rhs = [c + m for c, m in zip(excess, moved, strict=True)]
        nu = nonnegative_projection(matrix, rhs)
        projected = any(value > 0 for value in nu)
        mode = MODE_BOTH if scale > 0 else MODE_COST_ONLY
        if not projected:
            mode = MODE_REWARD_ONLY
        # d = d_r - sum_k nu_k p_k (or b_k), with p_k = -x_c[k] and b_k = -g_c[k]
        natural, gradient = [scale] + [0.0] * (size - 1), [0.0] * size
        target = natural if self.projection == "kl" else gradient
        for k, value in enumerate(nu, start=1):
            target[k] = value
        diagnostics = {
            "mode": mode,
            "projected": projected,
            "cost_excess": excess,
            "cost_multiplier": nu,
        }
        return self._step(natural, gradient, excess, False, diagnostics)

    def _settings(self) -> dict[str, object]:
        return {"projection": self.projection, **super()._settings()}
