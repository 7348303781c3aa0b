"""DelayedSafety: reward-only warm-up, then the wrapped strategy."""

import pytest
import torch

from gradmanip.strategies import Lagrangian, SoftSwitch
from gradmanip.strategies.base import MODE_BOTH, MODE_COST_ONLY, MODE_REWARD_ONLY
from gradmanip.strategies.delayed import DelayedSafety
from gradmanip.strategies.testing import check_strategy

G_R = torch.tensor([1.0, 0.0])
G_C = torch.tensor([[-1.0, 1.0]])
HIGH = torch.tensor([100.0])


@pytest.mark.parametrize("inner", [SoftSwitch(cost_limit=25.0), Lagrangian(cost_limit=25.0)])
def test_passes_the_property_suite(inner):
    check_strategy(DelayedSafety(inner, start_epoch=2))


def test_follows_reward_then_the_strategy():
    strategy = DelayedSafety(SoftSwitch(cost_limit=25.0), start_epoch=2)
    modes = []
    for _ in range(3):
        strategy.update_state(HIGH)
        update, diagnostics = strategy.aggregate(G_R, G_C, HIGH)
        modes.append((int(diagnostics["mode"]), int(diagnostics["safety_active"])))
        if len(modes) <= 2:
            assert torch.equal(update, G_R)
    assert modes == [(MODE_REWARD_ONLY, 0), (MODE_REWARD_ONLY, 0), (MODE_COST_ONLY, 1)]
    assert torch.equal(update, G_C[0])


def test_inner_state_waits_for_the_warmup_and_round_trips():
    strategy = DelayedSafety(Lagrangian(cost_limit=25.0), start_epoch=1)
    start = strategy.strategy.multiplier.clone()
    strategy.update_state(HIGH)
    assert torch.equal(strategy.strategy.multiplier, start)  # warm-up: no multiplier step
    strategy.update_state(HIGH)
    assert strategy.strategy.multiplier > start
    copy = DelayedSafety(Lagrangian(cost_limit=25.0), start_epoch=1)
    copy.load_state_dict(strategy.state_dict())
    assert torch.equal(copy.aggregate(G_R, G_C, HIGH)[0], strategy.aggregate(G_R, G_C, HIGH)[0])
    strategy.reset()
    assert int(strategy.epochs_seen) == 0 and torch.equal(strategy.strategy.multiplier, start)


def test_zero_warmup_is_the_strategy_itself():
    inner = SoftSwitch(cost_limit=25.0)
    update, diagnostics = DelayedSafety(inner, 0).aggregate(G_R, G_C, torch.tensor([25.0]))
    assert torch.equal(update, inner.aggregate(G_R, G_C, torch.tensor([25.0]))[0])
    assert int(diagnostics["mode"]) == MODE_BOTH


def test_bad_settings():
    with pytest.raises(ValueError, match="start_epoch"):
        DelayedSafety(SoftSwitch(), start_epoch=-1)
    with pytest.raises(TypeError, match="strategy must be a Strategy"):
        DelayedSafety(lambda g: g, start_epoch=1)
