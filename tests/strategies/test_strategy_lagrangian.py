"""Lagrangian (learned multiplier) and PID-Lagrangian strategies."""

from __future__ import annotations

import copy
from collections import deque
from itertools import pairwise

import pytest
import torch

from gradmanip.strategies import Lagrangian, PIDLagrangian

COSTS = [40.0, 35.0, 30.0, 26.0, 10.0, 5.0, 0.0, 0.0, 0.0, 30.0, 12.0, 25.0]


def _costs(values: list[float]) -> list[torch.Tensor]:
    return [torch.tensor([value]) for value in values]


def test_combination_formula():
    strategy = Lagrangian(cost_limit=[1.0, 1.0], multiplier_init=[1.0, 3.0])
    g_r = torch.tensor([1.0, 2.0])
    g_c = torch.tensor([[0.0, 4.0], [-4.0, 0.0]])
    update, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([0.0, 0.0]))
    torch.testing.assert_close(update, torch.tensor([-11.0, 6.0]) / 5)
    as_double = {"dtype": torch.float64}  # float diagnostics are float64
    torch.testing.assert_close(diagnostics["reward_weight"], torch.tensor(0.2, **as_double))
    torch.testing.assert_close(
        diagnostics["lagrange_multiplier"], torch.tensor([1.0, 3.0], **as_double)
    )


def test_adam_multiplier_matches_torch_adam_with_clamp():
    strategy = Lagrangian(cost_limit=25.0, multiplier_init=0.001, lr=0.035)
    multiplier = torch.nn.Parameter(torch.tensor([0.001], dtype=torch.float64))
    optimizer = torch.optim.Adam([multiplier], lr=0.035)
    for cost in _costs(COSTS):
        optimizer.zero_grad()
        (-multiplier * (cost.double() - 25.0)).sum().backward()
        optimizer.step()
        with torch.no_grad():
            multiplier.clamp_(min=0.0)
        strategy.update_state(cost)
        torch.testing.assert_close(strategy.multiplier, multiplier.detach(), rtol=1e-12, atol=0)


def _trajectory(strategy: Lagrangian, costs: list[float]) -> list[float]:
    values = []
    for cost in _costs(costs):
        strategy.update_state(cost)
        values.append(float(strategy.multiplier))
    return values


@pytest.mark.parametrize(
    "settings", [{"optimizer": "sgd"}, {"betas": (0.0, 0.999)}, {}], ids=["sgd", "rmsprop", "adam"]
)
def test_multiplier_rises_above_limit_and_falls_to_zero_below(settings):
    strategy = Lagrangian(cost_limit=25.0, **settings)
    rising = _trajectory(strategy, [40.0] * 5)
    assert all(b > a for a, b in pairwise([0.001, *rising]))
    falling = [rising[-1], *_trajectory(strategy, [0.0] * 300)]
    # Adam's momentum may carry the multiplier up for a few epochs; after that it only falls
    start = next(i for i, (a, b) in enumerate(pairwise(falling)) if b < a)
    assert start <= (10 if settings == {} else 0)
    assert all(b <= a for a, b in pairwise(falling[start:]))
    assert falling[-1] == 0.0 and min(falling) == 0.0


def test_upper_bound_and_per_constraint_multipliers():
    strategy = Lagrangian(cost_limit=[1.0, 100.0], lr=1.0, upper_bound=0.5, optimizer="sgd")
    strategy.update_state(torch.tensor([50.0, 50.0]))
    assert strategy.multiplier.tolist() == [0.5, 0.0]
    assert Lagrangian(num_constraints=3).multiplier.shape == (3,)


def _pid_reference(
    costs, limit, kp=0.1, ki=0.01, kd=0.01, init=0.001, delay=10, a_p=0.95, a_d=0.95
):
    """OmniSafe's PID update written out on floats (Stooke et al. 2020, Alg. 2)."""
    integral, delta_p, cost_d, history = init, 0.0, 0.0, deque([0.0], maxlen=delay)
    outputs = []
    for cost in costs:
        delta = cost - limit
        integral = max(0.0, integral + delta * ki)
        delta_p = a_p * delta_p + (1 - a_p) * delta
        cost_d = a_d * cost_d + (1 - a_d) * cost
        derivative = max(0.0, cost_d - history[0])
        outputs.append(max(0.0, kp * delta_p + integral + kd * derivative))
        history.append(cost_d)
    return outputs


def test_pid_matches_reference_controller():
    costs = COSTS * 2  # longer than d_delay, so the history wraps
    strategy = PIDLagrangian(cost_limit=25.0, kp=0.5, ki=0.05, kd=0.3, d_delay=3)
    expected = _pid_reference(costs, 25.0, kp=0.5, ki=0.05, kd=0.3, delay=3)
    for cost, value in zip(_costs(costs), expected, strict=True):
        strategy.update_state(cost)
        assert float(strategy.multiplier) == pytest.approx(value, rel=1e-12, abs=1e-15)


def test_pid_multiplier_rises_above_limit_and_falls_not_below_zero():
    strategy = PIDLagrangian(cost_limit=25.0)
    assert float(strategy.multiplier) == 0.0
    previous = 0.0
    for cost in _costs([60.0] * 10):
        strategy.update_state(cost)
        assert float(strategy.multiplier) > previous
        previous = float(strategy.multiplier)
    for cost in _costs([0.0] * 300):
        strategy.update_state(cost)
        assert float(strategy.multiplier) >= 0.0
    assert float(strategy.multiplier) < previous
    assert float(strategy.multiplier) == 0.0 and float(strategy.integral) == 0.0


def test_pid_upper_bound():
    strategy = PIDLagrangian(cost_limit=0.0, ki=1.0, upper_bound=2.0)
    strategy.update_state(torch.tensor([100.0]))
    assert float(strategy.multiplier) == 2.0


@pytest.mark.parametrize("factory", [Lagrangian, PIDLagrangian])
def test_state_dict_round_trip_reproduces_trajectory(factory):
    strategy = factory(cost_limit=[20.0, 5.0])
    for cost in COSTS[:5]:
        strategy.update_state(torch.tensor([cost, cost / 2]))
    restored = factory(cost_limit=[20.0, 5.0])
    restored.load_state_dict(copy.deepcopy(strategy.state_dict()))
    g_r, g_c = torch.randn(4), torch.randn(2, 4)
    for cost in COSTS[5:]:
        episode_cost = torch.tensor([cost, cost / 2])
        for module in (strategy, restored):
            module.update_state(episode_cost)
        assert torch.equal(strategy.multiplier, restored.multiplier)
        first = strategy.aggregate(g_r, g_c, episode_cost)[0]
        assert torch.equal(first, restored.aggregate(g_r, g_c, episode_cost)[0])


@pytest.mark.parametrize("factory", [Lagrangian, PIDLagrangian])
def test_reset_restores_initial_state(factory):
    strategy = factory(num_constraints=1)
    initial = copy.deepcopy(strategy.state_dict())
    for cost in _costs(COSTS):
        strategy.update_state(cost)
    strategy.reset()
    state = strategy.state_dict()
    assert state.pop("_extra_state") == initial.pop("_extra_state") == {"num_constraints": 1}
    for key, value in state.items():
        assert torch.equal(value, initial[key]), key


@pytest.mark.parametrize(
    ("factory", "error", "match"),
    [
        (lambda: Lagrangian(lr=-0.1), ValueError, "lr must be > 0"),
        (lambda: Lagrangian(cost_limit=-1.0), ValueError, "cost_limit must be >= 0"),
        (lambda: Lagrangian(multiplier_init=-1.0), ValueError, "multiplier_init must be >= 0"),
        (lambda: Lagrangian(optimizer="rmsprop"), ValueError, "optimizer must be one of"),
        (lambda: Lagrangian(upper_bound=-1.0), ValueError, "upper_bound must be >= 0"),
        (lambda: Lagrangian(betas=(0.9, 1.0)), ValueError, "betas\\[1\\]"),
        (lambda: Lagrangian(cost_limit=[1.0, 2.0], num_constraints=3), ValueError, "agree"),
        (lambda: PIDLagrangian(kp=-0.1), ValueError, "kp must be >= 0"),
        (lambda: PIDLagrangian(d_delay=0), ValueError, "d_delay"),
        (lambda: PIDLagrangian(p_ema_alpha=1.0), ValueError, "p_ema_alpha"),
        (lambda: PIDLagrangian(ki="x"), TypeError, "ki must be a float"),
    ],
)
def test_bad_settings(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


def test_update_state_validates_episode_cost():
    strategy = Lagrangian(cost_limit=[1.0, 2.0])
    with pytest.raises(ValueError, match="carries 1 constraints"):
        strategy.update_state(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="finite"):
        strategy.update_state(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="shape \\[K\\]"):
        strategy.update_state(torch.tensor([[1.0, 2.0]]))


def test_reprs_show_settings():
    assert repr(Lagrangian()) == (
        "Lagrangian(cost_limit=25, multiplier_init=0.001, lr=0.035, optimizer=adam, "
        "upper_bound=inf, num_constraints=None)"
    )
    assert "kp=0.1, ki=0.01, kd=0.01" in repr(PIDLagrangian())
