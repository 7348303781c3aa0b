"""The shared property suite, run on every registered strategy (and on configured variants)."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradmanip.strategies import (
    PCGradCombiner,
    Strategy,
    WeightedSumCombiner,
    available_strategies,
    make_strategy,
)
from gradmanip.strategies.testing import check_bad_inputs, check_strategy, random_cases

VARIANTS = {
    "soft_switch_k3_annealed": (
        "soft_switch",
        {
            "cost_limit": [1.0, 2.0, 3.0],
            "upper_slack": 1.0,
            "lower_slack": -1.0,
            "anneal_epochs": 3,
        },
    ),
    "soft_switch_pcgrad_band": ("soft_switch", {"cost_limit": 1.0, "in_band": PCGradCombiner(3)}),
    "soft_switch_weighted_band": (
        "soft_switch",
        {"cost_limit": 1.0, "in_band": WeightedSumCombiner(0.2, 0.8)},
    ),
    "soft_switch_mgda_band": ("soft_switch", {"cost_limit": 1.0, "in_band": "mgda"}),
    "hard_switch_k2": ("hard_switch", {"cost_limit": [1.0, 2.0], "tolerance": 0.5}),
    "lagrangian_k3": ("lagrangian", {"num_constraints": 3, "cost_limit": 1.0}),
    "lagrangian_sgd": ("lagrangian", {"cost_limit": 1.0, "optimizer": "sgd", "lr": 0.5}),
    "pid_lagrangian_k2": ("pid_lagrangian", {"cost_limit": [1.0, 2.0], "d_delay": 2}),
    "weighted_sum_k2": ("weighted_sum", {"reward_weight": 0.4, "cost_weight": [0.3, 0.3]}),
    "pcgrad_unseeded": ("pcgrad", {"seed": None}),
}

CONFIGURATIONS = {name: (name, {}) for name in available_strategies()} | VARIANTS


def _build(configuration: str) -> Strategy:
    name, kwargs = CONFIGURATIONS[configuration]
    return make_strategy(name, **copy.deepcopy(kwargs))


@pytest.mark.parametrize("configuration", sorted(CONFIGURATIONS))
def test_property_suite(configuration):
    check_strategy(_build(configuration))


@pytest.mark.parametrize("configuration", sorted(CONFIGURATIONS))
def test_property_suite_in_double_precision(configuration):
    strategy = _build(configuration)
    cases = list(random_cases(strategy, num_params=3, num_cases=6, seed=1, dtype=torch.float64))
    for g_r, g_c, cost in cases:
        update, _ = copy.deepcopy(strategy).aggregate(g_r, g_c, cost)
        assert update.dtype == torch.float64 and torch.isfinite(update).all()
    check_bad_inputs(strategy, cases[2])


values = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False, width=32)
scales = st.sampled_from([0.0, 1e-30, 1e-3, 1.0, 1e3, 1e30])


@settings(max_examples=25, deadline=None)
@given(
    configuration=st.sampled_from(sorted(CONFIGURATIONS)),
    num_params=st.integers(1, 6),
    data=st.data(),
)
def test_update_is_finite_with_expected_shape(configuration, num_params, data):
    strategy = _build(configuration)
    count = strategy.num_constraints or data.draw(st.integers(1, 3))
    scale = data.draw(scales)
    g_r = torch.tensor(data.draw(st.lists(values, min_size=num_params, max_size=num_params)))
    g_c = torch.tensor(
        data.draw(
            st.lists(
                st.lists(values, min_size=num_params, max_size=num_params),
                min_size=count,
                max_size=count,
            )
        )
    )
    cost = torch.tensor(data.draw(st.lists(st.floats(0, 60), min_size=count, max_size=count)))
    for _ in range(2):
        update, diagnostics = strategy.aggregate(g_r * scale, g_c * scale, cost)
        assert update.shape == (num_params,) and update.dtype == torch.float32
        assert torch.isfinite(update).all()
        assert int(diagnostics["mode"]) in (0, 1, 2)
        strategy.update_state(cost)


def test_reward_only_is_exactly_g_r():
    strategy = make_strategy("reward_only")
    for g_r, g_c, cost in random_cases(strategy, num_params=5):
        assert torch.equal(strategy.aggregate(g_r, g_c, cost)[0], g_r)


def test_check_strategy_catches_a_broken_strategy():
    class Broken(Strategy):
        name = "broken"
        diagnostic_names = ("mode",)

        def _aggregate(self, g_r, g_c, episode_cost):
            return g_r + 1.0, {"mode": torch.tensor(0)}  # zero directions give a non-zero step

    with pytest.raises(AssertionError):
        check_strategy(Broken())
    check_strategy(Broken(), homogeneous=False)


def test_check_strategy_catches_incomplete_reset_and_state_outside_buffers():
    from gradmanip.strategies import Lagrangian
    from gradmanip.strategies.testing import check_reset, check_state_dict_round_trip

    class ForgetfulReset(Lagrangian):
        def reset(self):
            pass

    class HiddenState(Lagrangian):
        epochs = 0  # a Python attribute: not in state_dict()

        def _update_state(self, episode_cost):
            super()._update_state(episode_cost)
            self.epochs += 1
            self.multiplier.add_(0.01 * self.epochs)

    cases = list(random_cases(Lagrangian(cost_limit=1.0)))
    with pytest.raises(AssertionError, match="reset"):
        check_reset(ForgetfulReset(cost_limit=1.0), cases)
    with pytest.raises(AssertionError, match="state_dict round trip"):
        check_state_dict_round_trip(HiddenState(cost_limit=1.0), cases)
