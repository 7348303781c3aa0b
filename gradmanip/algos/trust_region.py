"""Natural-gradient (TRPO) machinery on flat parameter vectors.

The pieces of a trust-region step (Schulman et al. 2015, "Trust Region Policy Optimization"),
as used by the PCRPO paper's base algorithm:

1. ``g = grad L(theta)``: gradient of a surrogate to MAXIMISE (an improvement direction).
2. ``x = (F + damping I)^-1 g`` by :func:`conjugate_gradient`, with ``F`` the Fisher matrix of the
   policy, reached only through Fisher-vector products (:class:`FisherVectorProduct`): ``F`` is
   the Hessian of the mean KL ``KL(pi_old || pi_theta)`` at ``theta = theta_old``, so
   ``F v = grad((grad KL) . v)`` by double backpropagation.
3. ``step = sqrt(2 max_kl / x^T M x) x`` (:func:`kl_scaled_step`): the quadratic KL estimate
   ``0.5 step^T M step`` equals ``max_kl``.
4. :func:`backtracking_line_search` over ``theta_old + 0.5^k step``, k = 0..n-1, accepting the
   first fraction whose actual improvement is positive, whose ratio actual / expected exceeds
   ``accept_ratio``, and whose measured mean KL stays within ``kl_slack * max_kl``.

Everything works on flat 1-D tensors (:func:`gradmanip.driver.flat.flat_params` /
:func:`gradmanip.driver.flat.set_flat_params` map between a list of parameters and one vector).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from gradmanip.driver.flat import ParameterLayout, flat_params, set_flat_params
from gradmanip.gaussian import gaussian_kl, gaussian_log_prob

__all__ = [
    "FisherVectorProduct",
    "LineSearchResult",
    "backtracking_line_search",
    "conjugate_gradient",
    "constrained_line_search",
    "flat_grad",
    "gaussian_kl",
    "gaussian_log_prob",
    "kl_scaled_step",
]


# ------------------------------------------------------------------------------ flat vectors
def flat_grad(
    output: Tensor,
    params: Sequence[nn.Parameter | Tensor],
    *,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> Tensor:
    """Gradient of the scalar ``output`` w.r.t. ``params`` as one 1-D vector.

    ``retain_graph`` defaults to ``create_graph`` (as in :func:`torch.autograd.grad`).
    Parameters that ``output`` does not depend on contribute zeros.
    """
    grads = torch.autograd.grad(
        output,
        list(params),
        retain_graph=retain_graph,
        create_graph=create_graph,
        allow_unused=True,
    )
    params = list(params)
    flat = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]
    return torch.cat([g.reshape(-1) for g in flat])


# ------------------------------------------------------------------------- Gaussian policy


# ----------------------------------------------------------------------- Fisher and CG
class FisherVectorProduct:
    """``v -> (F + damping I) v`` by double backpropagation of the mean KL.

    ``mean_kl`` must be the mean ``KL(pi_old || pi_theta)`` with ``pi_old`` the DETACHED current
    policy (so its value and gradient are zero and its Hessian is the Fisher matrix ``F``).
    The first backward pass (``grad KL`` with ``create_graph``) is done once here; each product
    is one more backward pass through it: ``F v = grad_theta((grad_theta KL) . v)``.
    """

    def __init__(
        self, mean_kl: Tensor, params: Sequence[nn.Parameter | Tensor], damping: float = 0.1
    ) -> None:
        if not (damping >= 0.0 and math.isfinite(damping)):
            raise ValueError(f"damping must be a finite float >= 0, got {damping}")
        self.params = list(params)
        self.damping = float(damping)
        self._kl_grad = flat_grad(mean_kl, self.params, create_graph=True)
        self.calls = 0

    def __call__(self, vector: Tensor) -> Tensor:
        self.calls += 1
        product = flat_grad(self._kl_grad @ vector.detach(), self.params, retain_graph=True)
        return product + self.damping * vector

    def __repr__(self) -> str:
        return f"FisherVectorProduct(num_params={self._kl_grad.numel()}, damping={self.damping})"


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor], b: Tensor, iters: int = 10, residual_tol: float = 1e-10
) -> Tensor:
    """Approximately solve ``A x = b`` for a symmetric positive-definite ``A`` given as
    ``matvec(v) = A v``, starting from ``x = 0`` (Hestenes & Stiefel 1952).

    Runs at most ``iters`` iterations and stops once the squared residual ``|b - A x|^2`` falls
    below ``residual_tol``. With ``iters >= dim(b)`` and exact arithmetic the solve is exact.
    """
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    if not residual_tol > 0.0:
        raise ValueError(f"residual_tol must be > 0, got {residual_tol}")
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iters):
        if rr < residual_tol:
            break
        ap = matvec(p)
        alpha = rr / (p @ ap)
        x.add_(alpha * p)
        r.sub_(alpha * ap)
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def kl_scaled_step(direction: Tensor, curvature: Tensor, max_kl: float) -> tuple[Tensor, float]:
    """Scale ``direction`` x so that the quadratic KL estimate ``0.5 step^T M step == max_kl``.

    ``curvature`` is ``M x`` (the matrix-vector product with the same matrix the CG solve used,
    ``M = F + damping I``). Returns ``(step, scale)`` with ``step = scale * x`` and
    ``scale = sqrt(2 max_kl / x^T M x)``. A zero or non-positive-curvature direction gives a
    zero step (scale 0): there is nothing to move along.
    """
    if not (max_kl > 0.0 and math.isfinite(max_kl)):
        raise ValueError(f"max_kl must be a finite float > 0, got {max_kl}")
    quadratic = float(direction @ curvature)
    if not (quadratic > 0.0 and math.isfinite(quadratic)):
        return torch.zeros_like(direction), 0.0
    scale = math.sqrt(2.0 * max_kl / quadratic)
    return scale * direction, scale


# ---------------------------------------------------------------------------- line search
@dataclass(frozen=True)
class LineSearchResult:
    """Outcome of :func:`backtracking_line_search`.

    ``fraction`` is the accepted step fraction (0.0 when nothing was accepted); ``steps`` the
    number of candidate fractions evaluated; ``improvement`` / ``kl`` the actual objective gain
    and measured mean KL at the returned parameters (0 when rejected: the old parameters are back).
    ``changes`` (:func:`constrained_line_search` only) holds the change of every surrogate.
    """

    accepted: bool
    fraction: float
    steps: int
    expected_improvement: float
    improvement: float
    kl: float
    changes: tuple[float, ...] = ()


def _check_search(max_steps: int, backtrack_factor: float, max_kl: float) -> None:
    """The settings both line searches share, checked before any step is tried."""
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if not 0.0 < backtrack_factor < 1.0:
        raise ValueError(f"backtrack_factor must be in (0, 1), got {backtrack_factor}")
    if not (max_kl > 0.0 and math.isfinite(max_kl)):
        raise ValueError(f"max_kl must be a finite float > 0, got {max_kl}")


def backtracking_line_search(
    params: Sequence[nn.Parameter | Tensor],
    step: Tensor,
    expected_improvement: float,
    evaluate: Callable[[], tuple[Tensor, Tensor]],
    max_kl: float,
    *,
    max_steps: int = 10,
    backtrack_factor: float = 0.5,
    accept_ratio: float = 0.1,
    kl_slack: float = 1.0,
) -> LineSearchResult:
    """Try ``theta_old + f * step`` for ``f = backtrack_factor^k``, k = 0..max_steps-1.

    ``evaluate()`` returns ``(objective, mean_kl)`` at the current parameters (objective to
    MAXIMISE, KL from the old policy); it runs under ``torch.no_grad``. ``expected_improvement``
    is the first-order gain of the full step, ``grad L . step``. A fraction ``f`` is accepted when

        actual = L(theta_old + f step) - L(theta_old) > 0,
        actual / (f * expected_improvement) > accept_ratio,
        mean_kl <= kl_slack * max_kl,

    (TRPO, Schulman et al. 2015, Appendix C). If no fraction passes, or if the expected
    improvement is not positive, the parameters are restored to ``theta_old``.
    """
    _check_search(max_steps, backtrack_factor, max_kl)
    if not kl_slack >= 1.0:
        raise ValueError(f"kl_slack must be >= 1 (1 = strict KL bound), got {kl_slack}")
    expected_improvement = float(expected_improvement)
    rejected = LineSearchResult(False, 0.0, 0, expected_improvement, 0.0, 0.0)
    if not (expected_improvement > 0.0 and math.isfinite(expected_improvement)):
        return rejected
    layout = ParameterLayout(params)
    old = flat_params(layout)
    kl_bound = kl_slack * max_kl
    with torch.no_grad():
        base, _ = evaluate()
        base = float(base)
        for k in range(max_steps):
            fraction = backtrack_factor**k
            set_flat_params(layout, old + fraction * step)
            objective, kl = evaluate()
            actual, kl = float(objective) - base, float(kl)
            ratio = actual / (fraction * expected_improvement)
            if actual > 0.0 and ratio > accept_ratio and kl <= kl_bound:
                return LineSearchResult(True, fraction, k + 1, expected_improvement, actual, kl)
        set_flat_params(layout, old)
    return replace(rejected, steps=max_steps)


def constrained_line_search(
    params: Sequence[nn.Parameter | Tensor],
    step: Tensor,
    evaluate: Callable[[], tuple[Tensor, Tensor]],
    max_kl: float,
    *,
    max_cost_increase: Sequence[float],
    require_reward_gain: bool,
    max_steps: int,
    backtrack_factor: float,
    expected_improvement: float = 0.0,
) -> LineSearchResult:
    """The line search of the trust-region rules (CPO, Achiam et al. 2017, Algorithm 1; PCPO).

    ``evaluate()`` returns ``(surrogates [1 + K], mean_kl)`` at the current parameters: the reward
    surrogate and the K cost IMPROVEMENT surrogates ``E[ratio * (-A_c[k])]``. Fractions
    ``f = backtrack_factor^k``, k < ``max_steps``, are tried in turn; ``theta_old + f * step`` is
    accepted when ``mean_kl <= max_kl``, every cost surrogate ``E[ratio * A_c[k]]`` rose by at
    most ``max_cost_increase[k]`` and, with ``require_reward_gain``, the reward surrogate did not
    decrease. Otherwise (or for a zero or non-finite step) the old parameters are restored.
    ``improvement`` in the result is the change of the reward surrogate, ``changes`` that of every
    surrogate (empty when nothing was accepted).
    """
    _check_search(max_steps, backtrack_factor, max_kl)
    rejected = LineSearchResult(False, 0.0, 0, float(expected_improvement), 0.0, 0.0)
    if not bool(torch.isfinite(step).all()) or not bool(step.ne(0).any()):
        return rejected
    layout = ParameterLayout(params)
    old = flat_params(layout)
    bounds = torch.as_tensor(list(max_cost_increase), dtype=torch.float64)
    with torch.no_grad():
        base, _ = evaluate()
        base = base.double()
        for k in range(max_steps):
            fraction = backtrack_factor**k
            set_flat_params(layout, old + fraction * step)
            surrogates, kl = evaluate()
            change, kl = surrogates.double() - base, float(kl)
            cost_rise = -change[1:]
            if (
                bool(torch.isfinite(change).all())
                and kl <= max_kl
                and bool((cost_rise <= bounds).all())
                and (not require_reward_gain or float(change[0]) >= 0.0)
            ):
                return LineSearchResult(
                    True,
                    fraction,
                    k + 1,
                    float(expected_improvement),
                    float(change[0]),
                    kl,
                    tuple(change.tolist()),
                )
        set_flat_params(layout, old)
    return replace(rejected, steps=max_steps)
