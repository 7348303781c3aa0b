"""CPO and PCPO: every case by hand, against an exact solution of the subproblem, properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gradmanip.strategies import (
    CPO,
    MODE_BOTH,
    MODE_COST_ONLY,
    MODE_REWARD_ONLY,
    PCPO,
    TrustRegionGeometry,
    make_strategy,
)
from gradmanip.strategies.testing import check_strategy
from gradmanip.strategies.trust_region import nonnegative_projection

DTYPE = torch.float64


def geometry(g: torch.Tensor, g_c: torch.Tensor, hessian: torch.Tensor | None = None):
    """Exact geometry of reward gradient g [P] and cost IMPROVEMENT directions g_c [K, P] in the
    metric ``hessian`` (identity when None); also returns the natural directions [M, P]."""
    grads = torch.cat((g.unsqueeze(0), g_c)).to(DTYPE)
    hessian = torch.eye(grads.shape[1], dtype=DTYPE) if hessian is None else hessian
    naturals = torch.linalg.solve(hessian, grads.T).T
    return (
        TrustRegionGeometry(
            (naturals @ hessian @ naturals.T).tolist(),
            (grads @ naturals.T).tolist(),
            (grads @ grads.T).tolist(),
        ),
        naturals,
        grads,
    )


def step_of(strategy, g, b, excess, radius, hessian=None):
    """(d, step) of ``strategy`` for reward gradient g, COST gradient b (g_c = -b) and cost
    excess c = J_c_hat - limit (``excess``, one per constraint)."""
    g = torch.as_tensor(g, dtype=DTYPE)
    b = torch.as_tensor(b, dtype=DTYPE).reshape(-1, g.shape[0])
    geo, naturals, grads = geometry(g, -b, hessian)
    episode_cost = torch.as_tensor(excess, dtype=DTYPE) + strategy.cost_limit
    step = strategy.coefficients_in_metric(geo, episode_cost, radius)
    natural = torch.tensor(step.natural, dtype=DTYPE)
    gradient = torch.tensor(step.gradient, dtype=DTYPE)
    return natural @ naturals + gradient @ grads, step


def close(actual: torch.Tensor, expected: list[float], tol: float = 1e-9) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=DTYPE), rtol=0, atol=tol)


# ------------------------------------------------------------------------ CPO, by hand
# H = I, delta = 0.5 (trust region |d| <= 1), b the cost gradient (g_c = -b).
@pytest.mark.parametrize(
    ("g", "b", "c", "expected", "case", "mode"),
    [
        # case 4: |b|^2 = 1e-8 <= 1e-6 and c < 0: d = sqrt(2 delta / q) x = (2, 0) / 2
        ([2.0, 0.0], [0.0, 1e-4], -1.0, [1.0, 0.0], 4, MODE_REWARD_ONLY),
        # case 3: c = -2, s = 1, B = 1 - 4 < 0: the whole region is feasible, reward step
        ([2.0, 0.0], [0.0, 1.0], -2.0, [1.0, 0.0], 3, MODE_REWARD_ONLY),
        # case 0: c = 2, B < 0: recovery d = -sqrt(2 delta / s) p = -(0, 1)
        ([2.0, 0.0], [0.0, 1.0], 2.0, [0.0, -1.0], 0, MODE_COST_ONLY),
        # case 2, reward step feasible: r = 0, c + r < 0
        ([1.0, 0.0], [0.0, 1.0], -0.5, [1.0, 0.0], 2, MODE_REWARD_ONLY),
        # case 2, both active: q = 2, r = 1, s = 1, A = 1, B = 0.75:
        # d = sqrt(0.75) ((1, 1) - (0, 1)) + 0.5 (0, 1)
        ([1.0, 1.0], [0.0, 1.0], -0.5, [math.sqrt(0.75), 0.5], 2, MODE_BOTH),
        # case 1, both active: d = sqrt(0.75) (1, 0) - 0.5 (0, 1)
        ([1.0, 1.0], [0.0, 1.0], 0.5, [math.sqrt(0.75), -0.5], 1, MODE_BOTH),
        # case 1, reward step feasible: r = -1, c + sqrt(1/2) r < 0: d = (1, -1) / sqrt(2)
        ([1.0, -1.0], [0.0, 1.0], 0.2, [2**-0.5, -(2**-0.5)], 1, MODE_REWARD_ONLY),
        # g parallel to b (A = 0) under conflict: only -(c / s) p remains, d = (0, 0.5)
        ([0.0, 2.0], [0.0, 1.0], -0.5, [0.0, 0.5], 2, MODE_BOTH),
    ],
)
def test_cpo_cases_by_hand(g, b, c, expected, case, mode) -> None:
    d, step = step_of(CPO(), g, b, [c], radius=0.5)
    close(d, expected)
    assert step.diagnostics["case"] == case and step.diagnostics["mode"] == mode
    assert step.max_cost_increase == [max(-c, 0.0)]
    assert step.require_reward_gain == (case >= 2)
    # the same rule on plain directions (identity metric, the strategy's own radius)
    update, diagnostics = CPO(cost_limit=10.0, radius=0.5).aggregate(
        torch.tensor(g, dtype=DTYPE),
        -torch.tensor([b], dtype=DTYPE),
        torch.tensor([10.0 + c], dtype=DTYPE),
    )
    close(update, expected)
    assert int(diagnostics["case"]) == case


def test_cpo_both_active_multipliers_match_the_dual() -> None:
    # g = (1, 1), b = (0, 1), c = 0.5, delta = 0.5: lambda = sqrt(A / B) = sqrt(1 / 0.75),
    # nu = (lambda c + r) / s = (0.5 lambda + 1) and d = (x - nu p) / lambda
    d, step = step_of(CPO(), [1.0, 1.0], [0.0, 1.0], [0.5], radius=0.5)
    lam = math.sqrt(1 / 0.75)
    nu = 0.5 * lam + 1.0
    close(d, [1 / lam, (1.0 - nu) / lam])
    assert math.isclose(step.diagnostics["cost_multiplier"], nu, rel_tol=1e-12)


def test_cpo_without_a_cost_direction() -> None:
    d, step = step_of(CPO(), [3.0, 4.0], [0.0, 0.0], [-1.0], radius=0.5)
    close(d, [0.6, 0.8])  # below the limit: the reward step
    assert step.diagnostics["case"] == 4
    d, step = step_of(CPO(), [3.0, 4.0], [0.0, 0.0], [1.0], radius=0.5)
    close(d, [0.0, 0.0])  # above it with nothing that moves the cost: no step
    assert step.diagnostics["mode"] == MODE_COST_ONLY


def test_cpo_refuses_several_constraints() -> None:
    with pytest.raises(ValueError, match="pcpo"):
        CPO(cost_limit=[1.0, 2.0])
    with pytest.raises(ValueError, match="cost_direction.*pcpo"):
        CPO().aggregate(torch.ones(3), torch.ones(2, 3), torch.zeros(2))


# ------------------------------------------------------- CPO against the exact solution
def exact_step(g, b, c, radius, hessian) -> torch.Tensor:
    """argmax g.d s.t. c + b.d <= 0, d^T H d / 2 <= radius, or, when no d is feasible, argmin
    b.d over the trust region; solved in whitened coordinates y = L^T d (H = L L^T), where the
    region is the ball |y| <= R = sqrt(2 radius) and the constraint a half-space."""
    chol = torch.linalg.cholesky(hessian)
    gw = torch.linalg.solve_triangular(chol, g.unsqueeze(1), upper=False).squeeze(1)
    bw = torch.linalg.solve_triangular(chol, b.unsqueeze(1), upper=False).squeeze(1)
    big_r = math.sqrt(2 * radius)
    y = big_r * gw / gw.norm()
    if c + bw @ y > 0:
        foot = -c * bw / (bw @ bw)
        if foot.norm() > big_r:
            y = -big_r * bw / bw.norm()  # infeasible: the recovery point
        else:
            along = gw - (gw @ bw) / (bw @ bw) * bw
            y = foot + math.sqrt(big_r**2 - float(foot @ foot)) * along / along.norm()
    return torch.linalg.solve_triangular(chol.T, y.unsqueeze(1), upper=True).squeeze(1)


def random_problem(seed: int, size: int):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(size, generator=gen, dtype=DTYPE)
    b = torch.randn(size, generator=gen, dtype=DTYPE)
    root = torch.randn(size, size, generator=gen, dtype=DTYPE)
    hessian = root @ root.T + 0.1 * torch.eye(size, dtype=DTYPE)
    return g, b, hessian


def test_exact_reference_beats_random_feasible_points() -> None:
    gen = torch.Generator().manual_seed(1)
    for seed in range(5):
        g, b, hessian = random_problem(seed, 3)
        d = exact_step(g, b, -0.05, 0.1, hessian)
        points = torch.randn(20_000, 3, generator=gen, dtype=DTYPE)
        quadratic = ((points @ hessian) * points).sum(1) / 2
        points = (
            points
            * torch.sqrt(0.1 / quadratic).unsqueeze(1)
            * torch.rand(20_000, 1, generator=gen, dtype=DTYPE)
        )
        feasible = points[-0.05 + points @ b <= 0]
        assert len(feasible) > 100
        assert float(g @ d) >= float((feasible @ g).max()) - 1e-12
        assert -0.05 + float(b @ d) <= 1e-10 and float(d @ hessian @ d) / 2 <= 0.1 + 1e-10


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    size=st.integers(2, 5),
    c=st.floats(-3.0, 3.0),
    radius=st.sampled_from([0.01, 0.1, 1.0]),
)
def test_cpo_matches_the_exact_solution(seed: int, size: int, c: float, radius: float) -> None:
    g, b, hessian = random_problem(seed, size)
    q = float(g @ torch.linalg.solve(hessian, g))
    p = torch.linalg.solve(hessian, b)
    r, s = float(g @ p), float(b @ p)
    assume(q - r * r / s > 1e-6 * q)  # g not parallel to b: the optimum is unique
    d, step = step_of(CPO(), g, b, [c], radius, hessian)
    expected = exact_step(g, b, c, radius, hessian)
    scale = float(expected.norm())
    torch.testing.assert_close(d, expected, rtol=1e-7, atol=1e-9 * scale)
    if step.diagnostics["case"] != 0:  # feasible: the step satisfies both constraints
        assert c + float(b @ d) <= 1e-9 * (1 + abs(c))
    assert float(d @ hessian @ d) / 2 <= radius * (1 + 1e-9)


def test_the_loss_convention_formula_breaks_the_constraint_where_cpo_does_not() -> None:
    # Case 1 with an ascent g: nu = (lambda c - r) / s (loss-convention formula, as OmniSafe 0.5
    # applies it) gives a step with c + b.d > 0; the ascent form lands on the constraint.
    g, b, c, delta = torch.tensor([1.0, 1.0], dtype=DTYPE), torch.tensor([0.0, 1.0]), 0.5, 0.5
    d, _ = step_of(CPO(), g, b, [c], delta)
    assert math.isclose(c + float(b.double() @ d), 0.0, abs_tol=1e-12)
    lam = math.sqrt(1 / 0.75)
    omnisafe_nu = (lam * c - 1.0) / 1.0
    omnisafe = (g - omnisafe_nu * b.double()) / lam
    assert c + float(b.double() @ omnisafe) > 0.1


# --------------------------------------------------------------------- PCPO, by hand
# H = diag(1, 4), g = (1, 1), b = (1, 1) (g_c = -b), delta = 0.5, c = 0.1:
# x = (1, 0.25), q = 1.25, d_r = x / sqrt(1.25) = (0.894427, 0.223607);
# p = (1, 0.25), r = s = 1.25.
HESSIAN = torch.diag(torch.tensor([1.0, 4.0], dtype=DTYPE))
D_R = [1 / math.sqrt(1.25), 0.25 / math.sqrt(1.25)]


def test_pcpo_kl_projection_by_hand() -> None:
    # nu = (sqrt(2 delta / q) r + c) / s = 1 / sqrt(1.25) + 0.08; d = d_r - nu p
    d, step = step_of(PCPO(), [1.0, 1.0], [1.0, 1.0], [0.1], 0.5, HESSIAN)
    nu = 1 / math.sqrt(1.25) + 0.08
    close(d, [D_R[0] - nu, D_R[1] - 0.25 * nu])
    close(d, [-0.08, -0.02])
    assert step.diagnostics["projected"] and step.diagnostics["mode"] == MODE_BOTH
    assert math.isclose(step.diagnostics["cost_multiplier"][0], nu, rel_tol=1e-12)
    assert not step.require_reward_gain and step.max_steps == 200


def test_pcpo_l2_projection_by_hand() -> None:
    # nu = (b.d_r + c) / (b.b) = (1.118034 + 0.1) / 2; d = d_r - nu b
    d, _ = step_of(PCPO(projection="l2"), [1.0, 1.0], [1.0, 1.0], [0.1], 0.5, HESSIAN)
    nu = (D_R[0] + D_R[1] + 0.1) / 2
    close(d, [D_R[0] - nu, D_R[1] - nu])
    assert math.isclose(0.1 + float(d.sum()), 0.0, abs_tol=1e-12)  # on the constraint


@pytest.mark.parametrize("projection", ["kl", "l2"])
def test_pcpo_keeps_a_feasible_reward_step(projection: str) -> None:
    d, step = step_of(PCPO(projection=projection), [1.0, 1.0], [1.0, 1.0], [-5.0], 0.5, HESSIAN)
    close(d, D_R)
    assert step.diagnostics["mode"] == MODE_REWARD_ONLY
    assert step.max_cost_increase == [5.0]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    count=st.integers(1, 4),
    projection=st.sampled_from(["kl", "l2"]),
)
def test_pcpo_joint_projection_meets_the_kkt_conditions(
    seed: int, count: int, projection: str
) -> None:
    gen = torch.Generator().manual_seed(seed)
    size = 6
    g = torch.randn(size, generator=gen, dtype=DTYPE)
    b = torch.randn(count, size, generator=gen, dtype=DTYPE)
    c = (torch.rand(count, generator=gen, dtype=DTYPE) - 0.5).tolist()
    root = torch.randn(size, size, generator=gen, dtype=DTYPE)
    hessian = root @ root.T + 0.5 * torch.eye(size, dtype=DTYPE)
    d, step = step_of(PCPO(cost_limit=[1.0] * count, projection=projection), g, b, c, 0.1, hessian)
    d_r = math.sqrt(0.2 / float(g @ torch.linalg.solve(hessian, g))) * torch.linalg.solve(
        hessian, g
    )
    nu = torch.tensor(step.diagnostics["cost_multiplier"], dtype=DTYPE)
    metric_b = torch.linalg.solve(hessian, b.T).T if projection == "kl" else b
    slack = torch.tensor(c, dtype=DTYPE) + b @ d
    assert (nu >= 0).all()
    assert (slack <= 1e-8).all()  # every linearised constraint holds
    torch.testing.assert_close(nu * slack, torch.zeros_like(nu), atol=1e-8, rtol=0)
    torch.testing.assert_close(d, d_r - nu @ metric_b)  # stationarity of the projection


def test_nonnegative_projection_one_constraint_and_limits() -> None:
    assert nonnegative_projection([[2.0]], [3.0]) == [1.5]
    assert nonnegative_projection([[2.0]], [-3.0]) == [0.0]
    assert nonnegative_projection([[0.0]], [3.0]) == [0.0]
    with pytest.raises(ValueError, match="at most 12"):
        nonnegative_projection([[1.0] * 13] * 13, [1.0] * 13)


# ------------------------------------------------------------------ shared properties
@pytest.mark.parametrize(
    "strategy",
    [
        CPO(),
        CPO(cost_units="step", episode_length=100.0),
        PCPO(),
        PCPO(projection="l2"),
        PCPO(cost_limit=[1.0, 2.0]),
    ],
    ids=repr,
)
def test_shared_property_suite(strategy) -> None:
    # sized to a radius, the update is not positively homogeneous (scaling g leaves it unchanged)
    check_strategy(strategy)


def test_cost_units_divide_by_the_episode_length() -> None:
    strategy = CPO(cost_limit=25.0, cost_units="step", episode_length=1000.0)
    assert strategy.cost_excess(torch.tensor([35.0])) == [0.01]
    assert strategy.cost_excess(torch.tensor([35.0]), 100.0) == [0.1]
    assert strategy.cost_excess(torch.tensor([35.0]), float("nan")) == [0.01]
    assert CPO(cost_limit=25.0).cost_excess(torch.tensor([35.0]), 100.0) == [10.0]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"radius": 0.0}, "radius"),
        ({"radius": float("inf")}, "radius"),
        ({"cost_units": "epoch"}, "cost_units"),
        ({"episode_length": -1.0}, "episode_length"),
        ({"backtrack_factor": 1.0}, "backtrack_factor"),
        ({"line_search_steps": 0}, "line_search_steps"),
        ({"cost_limit": -1.0}, "cost_limit"),
    ],
)
@pytest.mark.parametrize("name_", ["cpo", "pcpo"])
def test_bad_settings_are_refused(kwargs: dict, name: str, name_: str) -> None:
    with pytest.raises(ValueError, match=name):
        make_strategy(name_, **kwargs)


def test_pcpo_rejects_an_unknown_projection_and_shows_its_settings() -> None:
    with pytest.raises(ValueError, match="projection"):
        PCPO(projection="euclid")
    assert "projection=l2" in repr(PCPO(projection="l2"))
    assert "line_search_steps=20" in repr(CPO())


def test_coefficients_in_metric_validates_the_geometry() -> None:
    geo, _, _ = geometry(torch.ones(2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="radius"):
        CPO().coefficients_in_metric(geo, torch.tensor([1.0]), 0.0)
    bad = TrustRegionGeometry(geo.metric, [[1.0]], geo.gradient)
    with pytest.raises(ValueError, match="mixed"):
        CPO().coefficients_in_metric(bad, torch.tensor([1.0]), 0.1)
    with pytest.raises(ValueError, match="gram"):
        PCPO().coefficients_in_metric(geo, torch.tensor([1.0, 2.0]), 0.1)


def test_cpo_matches_the_exact_solution_in_every_case() -> None:
    """A deterministic sweep that meets cases 0-3, each time equal to the exact solution."""
    seen = set()
    for seed in range(60):
        g, b, hessian = random_problem(seed, 4)
        for c in (-2.0, -0.05, 0.0, 0.05, 2.0):
            d, step = step_of(CPO(), g, b, [c], 0.1, hessian)
            expected = exact_step(g, b, c, 0.1, hessian)
            torch.testing.assert_close(d, expected, rtol=1e-7, atol=1e-10)
            seen.add((step.diagnostics["case"], step.diagnostics["mode"]))
    assert {case for case, _ in seen} == {0, 1, 2, 3}
    assert {mode for _, mode in seen} == {MODE_BOTH, MODE_REWARD_ONLY, MODE_COST_ONLY}
