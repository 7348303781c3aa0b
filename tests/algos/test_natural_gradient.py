"""NaturalGradient on real batches of a constrained task, with every registered strategy."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from tensordict import TensorDictBase
from torchrl.modules import MLP, ValueOperator
from toy_batch import TASK, collect_batch, surrogates

from gradmanip.algos.natural_gradient import NaturalGradient, span_coefficients
from gradmanip.driver.flat import flat_params
from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.models import ActorCritic, make_actor_critic
from gradmanip.rl.trainer import Trainer
from gradmanip.strategies import (
    MODE_BOTH,
    MODE_COST_ONLY,
    TrustRegionStrategy,
    available_strategies,
    make_strategy,
    strategy_class,
)

SMALL = {"critic_epochs": 2, "critic_batch_size": 64}

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def collected() -> tuple[ActorCritic, TensorDictBase]:
    """Networks and a flat batch of 400 steps (4 episodes) with advantages and value targets."""
    actor_critic = make_actor_critic(1, 1, hidden=(16, 16), seed=0)
    batch = collect_batch(actor_critic)
    assert batch.get(("next", "cost")).sum() > 0, "the fixture needs a batch with costs"
    return actor_critic, batch


@pytest.fixture
def fresh(collected: tuple[ActorCritic, TensorDictBase]) -> tuple[ActorCritic, TensorDictBase]:
    actor_critic, batch = collected
    return copy.deepcopy(actor_critic), batch.clone()


# ------------------------------------------------------------------------ every strategy
# Trust-region rules (CPO, PCPO) may rightly take no step exactly on the limit (their line search
# allows no rise of the cost there): test_natural_trust_region.py checks their own guarantees.
COMBINING = [
    name
    for name in available_strategies()
    if not issubclass(strategy_class(name), TrustRegionStrategy)
]


@pytest.mark.parametrize("episode_cost", [0.0, 25.0, 60.0])
@pytest.mark.parametrize("name", COMBINING)
def test_update_with_each_registered_strategy(name: str, episode_cost: float, fresh) -> None:
    actor_critic, batch = fresh
    strategy = make_strategy(name)
    algo = NaturalGradient(actor_critic, strategy, max_kl=0.01, **SMALL)
    before = flat_params(algo.policy_params)
    metrics = algo.update(batch, torch.tensor([episode_cost]))

    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert metrics["step_accepted"] == 1.0
    assert not torch.equal(flat_params(algo.policy_params), before)
    _, _, kl = surrogates(actor_critic, batch)
    assert kl <= algo.kl_slack * algo.max_kl
    assert math.isclose(kl, metrics["kl"], rel_tol=1e-4, abs_tol=1e-8)
    assert metrics["surrogate_improvement"] > 0
    for diagnostic in strategy.diagnostic_names:
        assert any(key.startswith(f"strategy/{diagnostic}") for key in metrics), diagnostic
    for key in ("loss/value", "loss/cost_value", "reward_step_norm", "cost_step_norm"):
        assert key in metrics


def test_reward_only_is_trpo_on_the_reward_surrogate(fresh) -> None:
    actor_critic, batch = fresh
    algo = NaturalGradient(actor_critic, make_strategy("reward_only"), max_kl=0.01, **SMALL)
    reward_before, _, _ = surrogates(actor_critic, batch)
    metrics = algo.update(batch, torch.tensor([5.0]))
    reward_after, _, kl = surrogates(actor_critic, batch)
    assert reward_after > reward_before
    assert abs(metrics["cost_weight"]) < 1e-9 * metrics["reward_weight"]
    assert math.isclose(metrics["update_norm"], metrics["reward_step_norm"], rel_tol=1e-6)
    # CG iterates satisfy g.x = x^T M x, so the expected gain of the KL-scaled step is exactly
    # s^2 x^T M x = 2 max_kl, and the measured KL is close to the quadratic estimate max_kl.
    assert math.isclose(metrics["expected_improvement"], 2 * algo.max_kl, rel_tol=1e-3)
    assert 0.5 * algo.max_kl < kl <= algo.kl_slack * algo.max_kl


def test_cost_only_mode_takes_a_single_cost_step(fresh) -> None:
    actor_critic, batch = fresh
    strategy = make_strategy("soft_switch", cost_limit=1.0)
    algo = NaturalGradient(actor_critic, strategy, max_kl=0.01, **SMALL)
    _, cost_before, _ = surrogates(actor_critic, batch)
    metrics = algo.update(batch, torch.tensor([50.0]))  # far above the limit: cost only
    _, cost_after, _ = surrogates(actor_critic, batch)
    assert metrics["strategy/mode"] == MODE_COST_ONLY
    assert abs(metrics["reward_weight"]) < 1e-9 * metrics["cost_weight"]
    assert math.isclose(metrics["update_norm"], metrics["cost_step_norm"], rel_tol=1e-6)
    assert cost_after < cost_before  # the cost surrogate E[ratio A_c] went down


def test_soft_switch_in_band_combines_both_steps_with_positive_weights(fresh) -> None:
    actor_critic, batch = fresh
    strategy = make_strategy("soft_switch", cost_limit=25.0, upper_slack=5.0, lower_slack=-5.0)
    algo = NaturalGradient(actor_critic, strategy, max_kl=0.01, **SMALL)
    metrics = algo.update(batch, torch.tensor([25.0]))
    assert metrics["strategy/mode"] == MODE_BOTH
    assert metrics["strategy/conflict"] == 1.0  # speed pays reward and cost on this task
    # Projected PCRPO steps are positive combinations of Delta_r and Delta_c under conflict.
    assert metrics["reward_weight"] > 0 and metrics["cost_weight"] > 0
    assert metrics["step_accepted"] == 1.0 and metrics["surrogate_improvement"] > 0


def test_two_constraints_give_two_cost_steps(fresh) -> None:
    actor_critic, batch = fresh
    cost_critic = ValueOperator(
        MLP(in_features=1, out_features=2, num_cells=[8]),
        in_keys=["observation"],
        out_keys=["cost_value"],
    )
    networks = ActorCritic(actor_critic.actor, actor_critic.reward_critic, cost_critic)
    cost_advantage = batch["cost_advantage"]
    noise = torch.randn(cost_advantage.shape, generator=torch.Generator().manual_seed(0))
    batch["cost_advantage"] = torch.cat([cost_advantage, 0.5 * cost_advantage + noise], dim=1)
    batch["cost_value_target"] = batch["cost_value_target"].expand(-1, 2).clone()
    strategy = make_strategy("weighted_sum", reward_weight=0.4, cost_weight=[0.3, 0.3])
    algo = NaturalGradient(networks, strategy, max_kl=0.01, **SMALL)
    metrics = algo.update(batch, torch.tensor([5.0, 5.0]))
    assert metrics["step_accepted"] == 1.0 and metrics["cost_weight"] > 0
    assert all(math.isfinite(v) for v in metrics.values())
    one_output = NaturalGradient(actor_critic, strategy, **SMALL)
    before = flat_params(one_output.policy_params)
    with pytest.raises(ValueError, match="cost critic"):
        one_output.update(batch, torch.tensor([5.0, 5.0]))
    assert torch.equal(flat_params(one_output.policy_params), before)  # checked before any work


def test_fisher_subsample_keeps_the_kl_bound(fresh) -> None:
    actor_critic, batch = fresh
    algo = NaturalGradient(
        actor_critic, make_strategy("soft_switch"), max_kl=0.02, fisher_fraction=0.25, **SMALL
    )
    metrics = algo.update(batch, torch.tensor([25.0]))
    assert metrics["step_accepted"] == 1.0
    assert surrogates(actor_critic, batch)[2] <= algo.kl_slack * algo.max_kl


def test_zero_advantages_leave_the_policy_unchanged(fresh) -> None:
    actor_critic, batch = fresh
    batch["advantage"].zero_()
    batch["cost_advantage"].zero_()
    algo = NaturalGradient(actor_critic, make_strategy("weighted_sum"), critic_epochs=0)
    before = flat_params(algo.policy_params)
    metrics = algo.update(batch, torch.tensor([5.0]))
    assert metrics["step_accepted"] == 0.0 and metrics["update_norm"] == 0.0
    assert torch.equal(flat_params(algo.policy_params), before)


def test_critic_regression_reduces_the_losses(fresh) -> None:
    actor_critic, batch = fresh
    algo = NaturalGradient(
        actor_critic, make_strategy("reward_only"), critic_epochs=5, critic_lr=3e-3
    )
    metrics = algo.update(batch, torch.tensor([5.0]))
    assert metrics["loss/value"] < metrics["loss/value_before"]
    assert metrics["loss/cost_value"] < metrics["loss/cost_value_before"]


def test_same_seed_gives_identical_updates(collected) -> None:
    actor_critic, batch = collected
    results = []
    for _ in range(2):
        networks = copy.deepcopy(actor_critic)
        algo = NaturalGradient(networks, make_strategy("soft_switch"), seed=3, **SMALL)
        metrics = algo.update(batch.clone(), torch.tensor([25.0]))
        results.append((metrics, flat_params(list(networks.critics().parameters()))))
    assert results[0][0] == results[1][0]
    assert torch.equal(results[0][1], results[1][1])


def test_state_dict_round_trip(fresh) -> None:
    actor_critic, batch = fresh
    algo = NaturalGradient(actor_critic, make_strategy("reward_only"), seed=0, **SMALL)
    algo.update(batch, torch.tensor([5.0]))
    restored = NaturalGradient(copy.deepcopy(actor_critic), make_strategy("reward_only"), **SMALL)
    restored.load_state_dict(algo.state_dict())
    assert restored.critic_optimizer.state_dict()["state"].keys() == (
        algo.critic_optimizer.state_dict()["state"].keys()
    )
    assert torch.equal(
        torch.randperm(50, generator=restored._generator),
        torch.randperm(50, generator=algo._generator),
    )


def test_trainer_runs_natural_gradient_epochs() -> None:
    actor_critic = make_actor_critic(1, 1, hidden=(16, 16), seed=1)
    collector = make_collector(
        TASK, GaussianPolicy(actor_critic.policy_net), frames_per_batch=200, seed=1
    )
    algo = NaturalGradient(actor_critic, make_strategy("soft_switch", cost_limit=10.0), **SMALL)
    trainer = Trainer(
        collector,
        algo,
        actor_critic,
        SafeAdvantages(actor_critic.reward_critic, actor_critic.cost_critic),
    )
    try:
        history = trainer.train(2)
    finally:
        collector.shutdown()
    assert len(history) == 2
    for metrics in history:
        assert metrics["kl"] <= algo.kl_slack * algo.max_kl
        assert "strategy/mode" in metrics and math.isfinite(metrics["loss/value"])


# ------------------------------------------------------------------------------- helpers
def test_span_coefficients_recover_linear_combinations() -> None:
    gen = torch.Generator().manual_seed(0)
    directions = torch.randn(3, 40, generator=gen, dtype=torch.float64)
    weights = torch.tensor([0.7, -0.2, 1.5], dtype=torch.float64)
    torch.testing.assert_close(span_coefficients(weights @ directions, directions), weights)
    # Collinear rows: the minimum-norm split still reproduces the update.
    twins = torch.stack([directions[0], directions[0]])
    coefficients = span_coefficients(directions[0], twins)
    torch.testing.assert_close(coefficients, torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert torch.equal(span_coefficients(torch.zeros(40), torch.zeros(2, 40)), torch.zeros(2))


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("max_kl", 0.0),
        ("max_kl", float("inf")),
        ("cg_iters", 0),
        ("cg_iters", 2.5),
        ("cg_residual_tol", 0.0),
        ("damping", -0.1),
        ("line_search_steps", 0),
        ("backtrack_factor", 1.0),
        ("accept_ratio", 1.5),
        ("kl_slack", 0.9),
        ("fisher_fraction", 0.0),
        ("fisher_fraction", 1.5),
        ("critic_epochs", -1),
        ("critic_batch_size", 0),
        ("critic_lr", 0.0),
        ("critic_l2", -1e-3),
    ],
)
def test_bad_settings_raise_naming_the_setting(setting: str, value: float) -> None:
    actor_critic = make_actor_critic(1, 1, hidden=(4,), seed=0)
    with pytest.raises(ValueError, match=setting):
        NaturalGradient(actor_critic, make_strategy("reward_only"), **{setting: value})


def test_bad_arguments_raise() -> None:
    actor_critic = make_actor_critic(1, 1, hidden=(4,), seed=0)
    with pytest.raises(TypeError, match="actor_critic"):
        NaturalGradient(actor_critic.actor, make_strategy("reward_only"))
    with pytest.raises(TypeError, match="strategy"):
        NaturalGradient(actor_critic, torch.nn.Linear(2, 2))


def test_bad_batches_raise(fresh) -> None:
    actor_critic, batch = fresh
    algo = NaturalGradient(actor_critic, make_strategy("reward_only"), **SMALL)
    with pytest.raises(KeyError, match="cost_advantage"):
        algo.update(batch.exclude("cost_advantage"), torch.tensor([5.0]))
    with pytest.raises(ValueError, match="episode_cost"):
        algo.update(batch, torch.tensor([5.0, 1.0]))
    with pytest.raises(ValueError, match="flat"):
        algo.update(batch.reshape(4, 100), torch.tensor([5.0]))
    batch["advantage"][0] = float("nan")
    with pytest.raises(ValueError, match="advantage"):
        algo.update(batch, torch.tensor([5.0]))


def test_repr_shows_the_settings() -> None:
    algo = NaturalGradient(
        make_actor_critic(1, 1, hidden=(4,)), make_strategy("reward_only"), max_kl=0.05, cg_iters=15
    )
    text = repr(algo)
    assert "max_kl=0.05" in text and "cg_iters=15" in text and "damping=0.1" in text
