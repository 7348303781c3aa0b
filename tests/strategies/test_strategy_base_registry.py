"""Strategy base contract (keys, validation, TensorDict use), weighted sum and the registry."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule, TensorDictSequential

from gradmanip.strategies import (
    RewardOnly,
    SoftSwitch,
    Strategy,
    WeightedSum,
    available_strategies,
    make_strategy,
    register_strategy,
    strategy_class,
)

EXPECTED_NAMES = [
    "hard_switch",
    "lagrangian",
    "mgda",
    "pcgrad",
    "pid_lagrangian",
    "reward_only",
    "soft_switch",
    "weighted_sum",
]


def _td(**overrides) -> TensorDict:
    entries = {
        "reward_direction": torch.tensor([1.0, 0.0]),
        "cost_direction": torch.tensor([[-1.0, 1.0]]),
        "episode_cost": torch.tensor([1.0]),
    }
    entries.update(overrides)
    return TensorDict(entries, batch_size=[])


def test_registry_names_and_unknown_name():
    names = available_strategies()
    assert names == sorted(names) and set(EXPECTED_NAMES) <= set(names)
    assert strategy_class("soft_switch") is SoftSwitch
    with pytest.raises(ValueError, match="available strategies: .*hard_switch, lagrangian"):
        make_strategy("pcrpo")


def test_register_rejects_non_strategies_and_name_clashes():
    with pytest.raises(TypeError):
        register_strategy(int)

    class Clash(Strategy):
        name = "soft_switch"

    with pytest.raises(ValueError, match="already taken"):
        register_strategy(Clash)


def test_hydra_instantiation_with_lists():
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    config = OmegaConf.create(
        {
            "_target_": "gradmanip.strategies.SoftSwitch",
            "cost_limit": [25.0, 1.0],
            "upper_slack": [9.0, 0.5],
            "lower_slack": -1.0,
            "in_band": {
                "_target_": "gradmanip.strategies.ProjectionCombiner",
                "reward_weight": 0.5,
                "cost_weight": 0.5,
            },
        }
    )
    strategy = instantiate(config)
    assert isinstance(strategy, SoftSwitch) and strategy.num_constraints == 2
    assert strategy.upper_slack.tolist() == [9.0, 0.5]


def test_forward_writes_update_and_diagnostics():
    td = make_strategy("soft_switch", cost_limit=1.0)(_td())
    torch.testing.assert_close(td["update"], torch.tensor([0.25, 0.75]))
    assert td["strategy", "mode"].dtype == torch.int64 and int(td["strategy", "mode"]) == 0
    assert td["strategy", "conflict"].tolist() == [True]


def test_inside_sequential_after_a_producer_and_with_renamed_keys():
    producer = TensorDictModule(
        lambda g: (g * 2, torch.stack([-g * 2])), in_keys=["raw"], out_keys=["gr", "gc"]
    )
    strategy = make_strategy("reward_only").set_keys(
        reward_direction="gr", cost_direction="gc", update=("out", "u"), diagnostics="diag"
    )
    sequence = TensorDictSequential(producer, strategy)
    td = sequence(TensorDict(raw=torch.tensor([1.0, 3.0]), episode_cost=torch.tensor([0.0])))
    torch.testing.assert_close(td["out", "u"], torch.tensor([2.0, 6.0]))
    assert int(td["diag", "mode"]) == 1
    assert strategy.in_keys == ["gr", "gc", "episode_cost"]
    assert ("out", "u") in strategy.out_keys and ("diag", "reward_weight") in strategy.out_keys


def test_missing_key_names_it():
    td = _td()
    del td["episode_cost"]
    with pytest.raises(KeyError, match="episode_cost"):
        make_strategy("soft_switch")(td)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"reward_direction": torch.ones(2, 1)}, "'reward_direction' must have shape \\[P\\]"),
        ({"cost_direction": torch.ones(2)}, "'cost_direction' must have shape \\[K, P\\]"),
        ({"cost_direction": torch.ones(1, 3)}, "'cost_direction' must have shape"),
        ({"episode_cost": torch.ones(2)}, "'episode_cost' must have shape \\[K\\]"),
        ({"cost_direction": torch.ones(1, 2, dtype=torch.float64)}, "cast them to one dtype"),
        ({"reward_direction": torch.ones(2, dtype=torch.int64)}, "must be a floating tensor"),
        ({"episode_cost": torch.ones(1, dtype=torch.int64)}, "'episode_cost' must be a floating"),
    ],
)
def test_bad_shapes_and_dtypes_name_the_key(overrides, match):
    with pytest.raises(ValueError, match=match):
        make_strategy("soft_switch")(_td(**overrides))


def test_renamed_key_appears_in_errors():
    strategy = make_strategy("soft_switch").set_keys(episode_cost=("stats", "jc"))
    with pytest.raises(ValueError, match="stats"):
        strategy.aggregate(torch.ones(2), torch.ones(1, 2), torch.ones(2))
    with pytest.raises(KeyError, match="valid fields"):
        strategy.set_keys(gradient="g")
    with pytest.raises(TypeError, match="key for"):
        strategy.set_keys(update=3)


def test_fixed_constraint_count_is_enforced():
    strategy = make_strategy("soft_switch", cost_limit=[1.0, 2.0])
    with pytest.raises(ValueError, match="configured for 2"):
        strategy(_td())


def test_weighted_sum_values_and_validation():
    strategy = WeightedSum(reward_weight=0.25, cost_weight=0.75)
    update, diagnostics = strategy.aggregate(
        torch.tensor([4.0, 0.0]), torch.tensor([[0.0, 4.0]]), torch.tensor([0.0])
    )
    torch.testing.assert_close(update, torch.tensor([1.0, 3.0]))
    assert float(diagnostics["reward_weight"]) == 0.25 and int(diagnostics["mode"]) == 0
    assert strategy.num_constraints is None  # a scalar cost weight is shared by any K
    update, _ = strategy.aggregate(
        torch.tensor([4.0, 0.0]), torch.tensor([[0.0, 4.0], [4.0, 4.0]]), torch.zeros(2)
    )
    torch.testing.assert_close(update, torch.tensor([1.0 + 1.5, 1.5 + 1.5]))  # 0.375 per cost
    assert WeightedSum(0.2, [0.3, 0.5]).num_constraints == 2
    assert WeightedSum(2.0, 3.0, require_sum_to_one=False).num_constraints is None
    with pytest.raises(ValueError, match="must be 1, got 1.5"):
        WeightedSum(0.75, 0.75)
    with pytest.raises(ValueError, match="cost_weight must be >= 0"):
        WeightedSum(1.5, -0.5)
    with pytest.raises(ValueError, match="require_sum_to_one must be true or false"):
        WeightedSum(2.0, 3.0, require_sum_to_one="false")


def test_reward_only_supports_any_constraint_count():
    strategy = RewardOnly()
    assert strategy.num_constraints is None and repr(strategy) == "RewardOnly()"
    g_r = torch.tensor([1.0, -2.0])
    update, diagnostics = strategy.aggregate(g_r, torch.ones(4, 2), torch.zeros(4))
    assert torch.equal(update, g_r) and int(diagnostics["mode"]) == 1


def test_num_constraints_validation():
    class Plain(Strategy):
        name = "plain"

    with pytest.raises(ValueError, match="num_constraints"):
        Plain(num_constraints=0)


def test_device_mismatch_names_the_key():
    strategy = make_strategy("soft_switch")
    with pytest.raises(ValueError, match="'cost_direction' is on meta"):
        strategy.aggregate(torch.ones(2), torch.ones(1, 2, device="meta"), torch.ones(1))
    with pytest.raises(ValueError, match="'episode_cost' is on meta"):
        strategy.aggregate(torch.ones(2), torch.ones(1, 2), torch.ones(1, device="meta"))
