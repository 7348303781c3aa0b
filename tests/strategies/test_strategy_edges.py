"""Exact edges: band and switch boundaries in float64, J_c_hat precision, K > 1 conventions,
and directions that merely sit side by side in memory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gradmanip.driver.gradient_driver import GradientDriver
from gradmanip.strategies import (
    HardSwitch,
    Lagrangian,
    PIDLagrangian,
    SoftSwitch,
    WeightedSum,
    make_strategy,
)
from gradmanip.strategies.base import MODE_BOTH, MODE_COST_ONLY, MODE_REWARD_ONLY
from gradmanip.strategies.gram import direction_gram, stacked

ORTHOGONAL = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # Gram of e1, e2, e3


def _mode(strategy, episode_cost, gram=None):
    gram = gram or [[1.0, 0.0], [0.0, 1.0]]
    cost = torch.tensor(episode_cost, dtype=torch.float64)
    coefficients, diagnostics = strategy.coefficients(gram, cost)
    return diagnostics["mode"], coefficients, diagnostics


def test_hard_switch_follows_the_reward_exactly_on_the_edge():
    strategy = HardSwitch(cost_limit=40.0, tolerance=0.1)
    assert _mode(strategy, [40.1])[0] == MODE_REWARD_ONLY  # J = b + tol: not violated
    assert _mode(strategy, [math.nextafter(40.1, math.inf)])[0] == MODE_COST_ONLY


def test_hard_switch_follows_only_violated_constraints_ranked_by_excess():
    strategy = HardSwitch(cost_limit=[40.0, 0.0], tolerance=[0.1, 0.0])
    # constraint 0 sits on its edge (40.1 - 40 - 0.1 rounds to +1.4e-15, yet it is not
    # violated); constraint 1 exceeds its edge by 1e-16: only constraint 1 may be followed
    mode, coefficients, diagnostics = _mode(strategy, [40.1, 1e-16], ORTHOGONAL)
    assert mode == MODE_COST_ONLY and diagnostics["followed_constraint"] == 1
    assert coefficients == [0.0, 0.0, 1.0]
    # both violated: the larger excess J_k - (b_k + tol_k) wins, ties -> lowest index
    ranked = HardSwitch(cost_limit=[40.0, 0.0], tolerance=[0.5, 0.0])
    assert _mode(ranked, [41.0, 1.0], ORTHOGONAL)[2]["followed_constraint"] == 1
    assert _mode(ranked, [41.5, 0.5], ORTHOGONAL)[2]["followed_constraint"] == 0
    assert _mode(ranked, [41.0, 0.5], ORTHOGONAL)[2]["followed_constraint"] == 0  # a tie
    assert _mode(strategy, [40.1, 0.0], ORTHOGONAL)[0] == MODE_REWARD_ONLY


def test_soft_switch_band_edges_are_in_band():
    strategy = SoftSwitch(cost_limit=25.0, upper_slack=0.1, lower_slack=-0.1)
    assert _mode(strategy, [25.1])[0] == MODE_BOTH
    assert _mode(strategy, [24.9])[0] == MODE_BOTH
    assert _mode(strategy, [math.nextafter(25.1, math.inf)])[0] == MODE_COST_ONLY
    assert _mode(strategy, [math.nextafter(24.9, -math.inf)])[0] == MODE_REWARD_ONLY


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_driver_reads_a_python_episode_cost_in_float64(dtype):
    """25.1 as float32 is 25.1000004 > b + h+ = 25.1: the band decision needs float64."""
    layer = nn.Linear(3, 1).to(dtype)
    driver = GradientDriver(layer.parameters(), SoftSwitch(25.0, 0.1, -0.1))
    x = torch.randn(8, 3, dtype=dtype)
    out = layer(x).squeeze(1)
    result = driver.step(-out.mean(), [out.square().mean()], 25.1)
    assert int(result.diagnostic_values["mode"]) == MODE_BOTH
    hard = GradientDriver(layer.parameters(), HardSwitch(40.0, 0.1))
    out = layer(x).squeeze(1)
    result = hard.step(-out.mean(), [out.square().mean()], [40.1])
    assert int(result.diagnostic_values["mode"]) == MODE_REWARD_ONLY
    assert driver._episode_cost(torch.tensor([25.1], dtype=torch.float32)).dtype == torch.float64


def test_multiplier_state_is_float64_from_python_numbers():
    strategy = Lagrangian(cost_limit=25.0, multiplier_init=0.0, lr=1.0, optimizer="sgd")
    strategy.update_state([25.1])
    assert strategy.multiplier.dtype == torch.float64
    assert strategy.multiplier.item() == 25.1 - 25.0  # 0.10000000000000142, not 0.10000038
    pid = PIDLagrangian(cost_limit=25.0, kp=0.0, ki=1.0, kd=0.0, multiplier_init=0.0)
    pid.update_state([25.1])
    assert pid.multiplier.item() == 25.1 - 25.0


def test_trainer_hands_float64_episode_cost_to_the_strategy_and_the_algorithm():
    from tests.rl.test_trainer import build

    trainer, collector = build(frames=200)
    seen = []
    update = trainer.algo.update
    trainer.algo.update = lambda batch, cost: seen.append(cost.dtype) or update(batch, cost)
    update_state = trainer.strategy.update_state
    trainer.strategy.update_state = lambda cost: seen.append(cost.dtype) or update_state(cost)
    trainer.run_epoch()
    collector.shutdown()
    assert seen == [torch.float64, torch.float64]


def test_directions_side_by_side_in_memory_are_not_joined():
    """Two views of one numpy array: g_c starts right after g_r but in another storage."""
    block = np.arange(12, dtype=np.float64).reshape(3, 4) - 5.0
    g_r, g_c = torch.from_numpy(block[0]), torch.from_numpy(block[1:])
    assert g_c.data_ptr() == g_r.data_ptr() + 4 * 8 and stacked(g_r, g_c) is None
    copies = (g_r.clone(), g_c.clone())
    assert direction_gram(g_r, g_c) == direction_gram(*copies)
    strategy = SoftSwitch(25.0, 9.0, -9.0)
    episode_cost = torch.tensor([25.0, 25.0], dtype=torch.float64)
    update, _ = strategy.aggregate(g_r, g_c, episode_cost)
    torch.testing.assert_close(update, strategy.aggregate(*copies, episode_cost)[0])
    shared = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    assert stacked(shared[0], shared[1:]) is not None  # one storage: the fast view is allowed


def test_k_constraints_weights_sum_to_one_in_band_and_in_cost_only_mode():
    strategy = SoftSwitch(cost_limit=25.0, upper_slack=5.0, lower_slack=-5.0)
    _, in_band, _ = _mode(strategy, [25.0, 25.0], ORTHOGONAL)
    assert in_band == [0.5, 0.25, 0.25] and sum(in_band) == 1.0
    _, cost_only, _ = _mode(strategy, [31.0, 31.0], ORTHOGONAL)
    assert cost_only == [0.0, 0.5, 0.5]
    _, one_violated, _ = _mode(strategy, [31.0, 25.0], ORTHOGONAL)
    assert one_violated == [0.0, 1.0, 0.0]
    # explicit per-constraint weights are taken as given
    weighted = SoftSwitch(25.0, 5.0, -5.0, reward_weight=0.4, cost_weight=[0.5, 0.1])
    assert _mode(weighted, [25.0, 25.0], ORTHOGONAL)[1] == [0.4, 0.5, 0.1]
    assert WeightedSum(0.5, 0.5).coefficients(ORTHOGONAL, torch.zeros(2))[0] == [0.5, 0.25, 0.25]


@pytest.mark.parametrize("name", ["lagrangian", "pid_lagrangian"])
def test_scalar_multiplier_settings_serve_any_k_fixed_by_first_use(name):
    strategy = make_strategy(name, cost_limit=25.0)
    assert strategy.num_constraints is None
    strategy.update_state([30.0, 20.0, 25.0])
    assert strategy.num_constraints == 3 and strategy.multiplier.shape == (3,)
    coefficients, _ = strategy.coefficients(
        torch.eye(4, dtype=torch.float64).tolist(), torch.tensor([30.0, 20.0, 25.0])
    )
    assert len(coefficients) == 4 and math.isclose(sum(coefficients), 1.0)
    with pytest.raises(ValueError, match="configured for 3"):
        strategy.update_state([30.0])
    restored = make_strategy(name, cost_limit=25.0)
    restored.load_state_dict(strategy.state_dict())
    assert restored.num_constraints == 3 and torch.equal(restored.multiplier, strategy.multiplier)
    for cost in ([31.0, 19.0, 26.0], [29.0, 21.0, 24.0]):
        strategy.update_state(cost)
        restored.update_state(cost)
        assert torch.equal(restored.multiplier, strategy.multiplier)
    with pytest.raises(ValueError, match="configured for 2"):
        make_strategy(name, cost_limit=[25.0, 25.0]).load_state_dict(strategy.state_dict())
    # combining before any update_state fixes K too, from the initial multipliers
    fresh = make_strategy(name, cost_limit=25.0)
    fresh.coefficients(torch.eye(3, dtype=torch.float64).tolist(), torch.zeros(2))
    assert fresh.num_constraints == 2
