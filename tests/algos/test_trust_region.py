"""Natural-gradient machinery against explicit matrices on a tiny Gaussian policy."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from gradmanip.algos.trust_region import (
    FisherVectorProduct,
    backtracking_line_search,
    conjugate_gradient,
    flat_grad,
    gaussian_kl,
    gaussian_log_prob,
    kl_scaled_step,
)
from gradmanip.driver.flat import flat_params, set_flat_params, unflatten

OBS_DIM, ACTION_DIM, HIDDEN, BATCH = 2, 2, 3, 64


pytestmark = pytest.mark.usefixtures("single_thread")


class TinyPolicy(nn.Module):
    """obs -> (loc, scale): a 2-3-2 tanh MLP and a state-independent log-std (float64)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(OBS_DIM, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, ACTION_DIM)
        )
        self.log_std = nn.Parameter(torch.full((ACTION_DIM,), -0.3))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc = self.net(obs)
        return loc, self.log_std.exp().expand_as(loc)


def make_problem(seed: int) -> tuple[TinyPolicy, list[nn.Parameter], dict[str, torch.Tensor]]:
    """Policy, its parameters and a batch with actions sampled from it and random advantages."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        policy = TinyPolicy().double()
    obs = torch.randn(BATCH, OBS_DIM, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        loc, scale = policy(obs)
        action = loc + scale * torch.randn(loc.shape, generator=gen, dtype=torch.float64)
        old_log_prob = gaussian_log_prob(action, loc, scale)
    advantage = torch.randn(BATCH, generator=gen, dtype=torch.float64)
    batch = {
        "obs": obs,
        "action": action,
        "old_log_prob": old_log_prob,
        "advantage": advantage,
        "old_loc": loc,
        "old_scale": scale,
    }
    return policy, list(policy.parameters()), batch


def surrogate(policy: TinyPolicy, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    loc, scale = policy(batch["obs"])
    ratio = torch.exp(gaussian_log_prob(batch["action"], loc, scale) - batch["old_log_prob"])
    return (ratio * batch["advantage"]).mean()


def fisher_kl(policy: TinyPolicy, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    loc, scale = policy(batch["obs"])
    return gaussian_kl(loc.detach(), scale.detach(), loc, scale).mean()


def explicit_fisher(policy: TinyPolicy, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Hessian of theta -> mean KL(pi_theta0 || pi_theta) at theta0, built entry by entry."""
    params = list(policy.parameters())
    names = [name for name, _ in policy.named_parameters()]
    theta0 = flat_params(params)

    def kl_of(theta: torch.Tensor) -> torch.Tensor:
        loc, scale = functional_call(
            policy, dict(zip(names, unflatten(theta, params), strict=True)), (batch["obs"],)
        )
        return gaussian_kl(batch["old_loc"], batch["old_scale"], loc, scale).mean()

    return torch.autograd.functional.hessian(kl_of, theta0)


def explicit_fisher_gauss_newton(
    policy: TinyPolicy, batch: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Closed-form Fisher of a diagonal Gaussian: E_s[J_mu^T S^-2 J_mu + 2 J_logstd^T J_logstd]."""
    params = list(policy.parameters())
    loc, scale = policy(batch["obs"])
    n, d = loc.shape
    size = sum(p.numel() for p in params)
    total = torch.zeros(size, size, dtype=torch.float64)
    for i in range(n):
        for j in range(d):
            j_mu = flat_grad(loc[i, j], params, retain_graph=True)
            j_log_std = flat_grad(scale[i, j].log(), params, retain_graph=True)
            total += torch.outer(j_mu, j_mu) / scale[i, j].detach() ** 2
            total += 2.0 * torch.outer(j_log_std, j_log_std)
    return total / n


# ------------------------------------------------------------------------- Gaussian formulas
def test_gaussian_log_prob_and_kl_match_torch_distributions() -> None:
    gen = torch.Generator().manual_seed(0)
    loc_p, loc_q, action = (torch.randn(5, 3, generator=gen, dtype=torch.float64) for _ in range(3))
    scale_p, scale_q = (
        torch.rand(5, 3, generator=gen, dtype=torch.float64) + 0.2 for _ in range(2)
    )
    p = torch.distributions.Independent(torch.distributions.Normal(loc_p, scale_p), 1)
    q = torch.distributions.Independent(torch.distributions.Normal(loc_q, scale_q), 1)
    torch.testing.assert_close(gaussian_log_prob(action, loc_p, scale_p), p.log_prob(action))
    torch.testing.assert_close(
        gaussian_kl(loc_p, scale_p, loc_q, scale_q), torch.distributions.kl_divergence(p, q)
    )
    assert torch.all(gaussian_kl(loc_p, scale_p, loc_p, scale_p) == 0)


def test_flat_grad_gives_zeros_for_unused_parameters() -> None:
    used, unused = nn.Parameter(torch.tensor([2.0, 3.0])), nn.Parameter(torch.ones(2, 2))
    grad = flat_grad((used**2).sum(), [used, unused])
    torch.testing.assert_close(grad, torch.tensor([4.0, 6.0, 0.0, 0.0, 0.0, 0.0]))


# ------------------------------------------------------------------------------ Fisher products
def test_fisher_vector_product_equals_explicit_fisher_times_v() -> None:
    policy, params, batch = make_problem(seed=1)
    fisher = explicit_fisher(policy, batch)
    # The KL Hessian is the Gaussian Fisher matrix (two independent constructions agree).
    torch.testing.assert_close(fisher, explicit_fisher_gauss_newton(policy, batch))
    v = torch.randn(
        fisher.shape[0], generator=torch.Generator().manual_seed(2), dtype=torch.float64
    )
    for damping in (0.0, 0.1):
        fvp = FisherVectorProduct(fisher_kl(policy, batch), params, damping)
        torch.testing.assert_close(fvp(v), fisher @ v + damping * v)
        torch.testing.assert_close(fvp(2.0 * v), 2.0 * (fisher @ v + damping * v))
    assert fvp.calls == 2


def test_fisher_vector_product_rejects_negative_damping() -> None:
    policy, params, batch = make_problem(seed=0)
    with pytest.raises(ValueError, match="damping"):
        FisherVectorProduct(fisher_kl(policy, batch), params, damping=-0.1)


# ---------------------------------------------------------------------------- conjugate gradient
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), dim=st.integers(1, 12))
def test_conjugate_gradient_solves_spd_systems_exactly_with_dim_iterations(
    seed: int, dim: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    basis = torch.randn(dim, dim, generator=gen, dtype=torch.float64)
    matrix = basis @ basis.T + 0.5 * torch.eye(dim, dtype=torch.float64)
    b = torch.randn(dim, generator=gen, dtype=torch.float64)
    x = conjugate_gradient(lambda v: matrix @ v, b, iters=dim, residual_tol=1e-30)
    torch.testing.assert_close(x, torch.linalg.solve(matrix, b), rtol=1e-6, atol=1e-8)


def test_conjugate_gradient_single_iteration_is_the_exact_line_minimiser_along_b() -> None:
    matrix = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([1.0, 2.0], dtype=torch.float64)
    x = conjugate_gradient(lambda v: matrix @ v, b, iters=1)
    # alpha = b.b / b.A.b = 5 / 20: the exact minimiser of the quadratic along b.
    torch.testing.assert_close(x, torch.tensor([0.25, 0.5], dtype=torch.float64))


def test_conjugate_gradient_stops_at_the_residual_tolerance() -> None:
    calls = []

    def matvec(v: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return 2.0 * v

    x = conjugate_gradient(matvec, torch.ones(5, dtype=torch.float64), iters=10)
    torch.testing.assert_close(x, torch.full((5,), 0.5, dtype=torch.float64))
    assert len(calls) == 1  # exact after one step: the residual is zero, no further products
    assert torch.equal(conjugate_gradient(matvec, torch.zeros(3), iters=10), torch.zeros(3))


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"iters": 0}, "iters"), ({"residual_tol": 0.0}, "residual_tol")]
)
def test_conjugate_gradient_rejects_bad_settings(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        conjugate_gradient(lambda v: v, torch.ones(2), **kwargs)


def test_cg_direction_on_the_policy_equals_the_exact_damped_natural_gradient() -> None:
    policy, params, batch = make_problem(seed=3)
    damping = 0.1
    fisher = explicit_fisher(policy, batch)
    g = flat_grad(surrogate(policy, batch), params)
    fvp = FisherVectorProduct(fisher_kl(policy, batch), params, damping)
    x = conjugate_gradient(fvp, g, iters=len(g), residual_tol=1e-30)
    exact = torch.linalg.solve(fisher + damping * torch.eye(len(g), dtype=torch.float64), g)
    torch.testing.assert_close(x, exact, rtol=1e-6, atol=1e-9)
    # With the usual 10 iterations the direction is already close in angle to the exact one.
    x10 = conjugate_gradient(fvp, g, iters=10)
    assert torch.nn.functional.cosine_similarity(x10, exact, dim=0) > 0.95


# ------------------------------------------------------------------------------ KL-scaled step
def test_kl_scaled_step_puts_the_quadratic_kl_on_the_radius() -> None:
    policy, params, batch = make_problem(seed=4)
    damping, max_kl = 0.1, 0.02
    fisher = explicit_fisher(policy, batch)
    damped = fisher + damping * torch.eye(len(fisher), dtype=torch.float64)
    fvp = FisherVectorProduct(fisher_kl(policy, batch), params, damping)
    x = conjugate_gradient(fvp, flat_grad(surrogate(policy, batch), params), iters=10)
    step, scale = kl_scaled_step(x, fvp(x), max_kl)
    assert math.isclose(float(0.5 * step @ damped @ step), max_kl, rel_tol=1e-9)
    assert float(0.5 * step @ fisher @ step) <= max_kl  # the undamped estimate stays inside
    torch.testing.assert_close(step, scale * x)
    assert math.isclose(scale, math.sqrt(2 * max_kl / float(x @ damped @ x)), rel_tol=1e-9)


def test_kl_scaled_step_of_a_zero_direction_is_zero() -> None:
    step, scale = kl_scaled_step(torch.zeros(4), torch.zeros(4), 0.01)
    assert scale == 0.0 and torch.equal(step, torch.zeros(4))
    with pytest.raises(ValueError, match="max_kl"):
        kl_scaled_step(torch.ones(2), torch.ones(2), 0.0)


# -------------------------------------------------------------------------------- line search
def test_line_search_accepts_the_first_fraction_passing_ratio_and_kl_bound() -> None:
    """f(t) = t - t^2, KL(t) = t^2, from t = 0 along step 4 (expected improvement 4).

    Ratio of fraction f: (4f - 16f^2) / 4f = 1 - 4f > 0.1 first holds at f = 1/8 (KL 0.25);
    with max_kl = 0.1 the KL bound pushes it to f = 1/16 (gain 0.1875, KL 0.0625).
    """
    theta = nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def evaluate() -> tuple[torch.Tensor, torch.Tensor]:
        return theta - theta**2, theta**2

    step = torch.tensor([4.0], dtype=torch.float64)
    result = backtracking_line_search([theta], step, 4.0, evaluate, max_kl=1.0)
    assert (result.accepted, result.fraction, result.steps) == (True, 0.125, 4)
    assert math.isclose(result.improvement, 0.25) and math.isclose(result.kl, 0.25)
    assert math.isclose(float(theta.detach()), 0.5)

    theta.data.zero_()
    result = backtracking_line_search([theta], step, 4.0, evaluate, max_kl=0.1)
    assert (result.accepted, result.fraction, result.steps) == (True, 0.0625, 5)
    assert math.isclose(result.improvement, 0.1875) and math.isclose(float(theta.detach()), 0.25)

    theta.data.zero_()  # a slack of 2.5 admits KL 0.25 again
    result = backtracking_line_search([theta], step, 4.0, evaluate, max_kl=0.1, kl_slack=2.5)
    assert result.fraction == 0.125


def test_line_search_rejects_non_improving_steps_and_restores_the_parameters() -> None:
    policy, params, batch = make_problem(seed=5)
    g = flat_grad(surrogate(policy, batch), params)
    old = flat_params(params)

    def evaluate() -> tuple[torch.Tensor, torch.Tensor]:
        return surrogate(policy, batch), fisher_kl_from_old(policy, batch)

    # Descent direction claimed to improve: every fraction loses, nothing is accepted.
    result = backtracking_line_search(params, -g, float(g @ g), evaluate, max_kl=1.0)
    assert not result.accepted and result.fraction == 0.0 and result.steps == 10
    assert torch.equal(flat_params(params), old)
    # No expected improvement: nothing is tried.
    result = backtracking_line_search(params, g, 0.0, evaluate, max_kl=1.0)
    assert not result.accepted and result.steps == 0
    assert torch.equal(flat_params(params), old)
    # An improving step whose every fraction breaks a tiny KL bound is rejected as well.
    result = backtracking_line_search(
        params, 50 * g, float(50 * g @ g), evaluate, 1e-12, max_steps=3
    )
    assert not result.accepted and result.steps == 3
    assert torch.equal(flat_params(params), old)


def fisher_kl_from_old(policy: TinyPolicy, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    loc, scale = policy(batch["obs"])
    return gaussian_kl(batch["old_loc"], batch["old_scale"], loc, scale).mean()


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    max_kl=st.sampled_from([0.001, 0.01, 0.05, 0.5, 2.0]),
    kl_slack=st.sampled_from([1.0, 1.5]),
)
def test_every_accepted_natural_step_respects_the_kl_bound_and_improves(
    seed: int, max_kl: float, kl_slack: float
) -> None:
    policy, params, batch = make_problem(seed)
    g = flat_grad(surrogate(policy, batch), params)
    fvp = FisherVectorProduct(fisher_kl(policy, batch), params, damping=0.1)
    x = conjugate_gradient(fvp, g, iters=10)
    step, _ = kl_scaled_step(x, fvp(x), max_kl)
    old, before = flat_params(params), float(surrogate(policy, batch).detach())

    def evaluate() -> tuple[torch.Tensor, torch.Tensor]:
        return surrogate(policy, batch), fisher_kl_from_old(policy, batch)

    result = backtracking_line_search(
        params, step, float(g @ step), evaluate, max_kl, kl_slack=kl_slack
    )
    with torch.no_grad():
        kl_now, gain = (
            float(fisher_kl_from_old(policy, batch)),
            float(surrogate(policy, batch)) - before,
        )
    if result.accepted:
        assert kl_now <= kl_slack * max_kl
        assert math.isclose(kl_now, result.kl, rel_tol=1e-9)
        assert gain > 0 and math.isclose(gain, result.improvement, rel_tol=1e-9, abs_tol=1e-15)
        assert gain > 0.1 * result.fraction * result.expected_improvement
        torch.testing.assert_close(flat_params(params), old + result.fraction * step)
    else:
        assert torch.equal(flat_params(params), old)
    set_flat_params(params, old)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_steps": 0}, "max_steps"),
        ({"backtrack_factor": 1.0}, "backtrack_factor"),
        ({"kl_slack": 0.5}, "kl_slack"),
        ({"max_kl": -1.0}, "max_kl"),
    ],
)
def test_line_search_rejects_bad_settings(kwargs: dict, name: str) -> None:
    theta = nn.Parameter(torch.zeros(1))
    settings_ = {"max_kl": 0.01, **kwargs}
    with pytest.raises(ValueError, match=name):
        backtracking_line_search(
            [theta], torch.ones(1), 1.0, lambda: (theta.sum(), theta.sum()), **settings_
        )
