"""CPO and PCPO on the natural-gradient base: metric geometry, the rules' line search, pairing."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDictBase
from torch import nn
from toy_batch import collect_batch, surrogates

from gradmanip.algos import PPO, NaturalGradient
from gradmanip.algos.trust_region import constrained_line_search
from gradmanip.driver.flat import flat_params
from gradmanip.rl.models import ActorCritic, make_actor_critic
from gradmanip.strategies import CPO, PCPO, DelayedSafety, make_strategy

SMALL = {"critic_epochs": 0}

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def collected() -> tuple[ActorCritic, TensorDictBase]:
    """Networks and a flat batch of 400 steps with advantages (reward and cost conflict)."""
    actor_critic = make_actor_critic(1, 1, hidden=(16, 16), seed=0)
    with torch.random.fork_rng():  # the same batch whatever ran before
        torch.manual_seed(0)
        batch = collect_batch(actor_critic)
    return actor_critic, batch


STRATEGIES = {
    "cpo": lambda: CPO(cost_limit=25.0),
    "cpo_step_units": lambda: CPO(cost_limit=25.0, cost_units="step", episode_length=100.0),
    "pcpo_kl": lambda: PCPO(cost_limit=25.0),
    "pcpo_l2": lambda: PCPO(cost_limit=25.0, projection="l2"),
}


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(STRATEGIES)),
    episode_cost=st.floats(0.0, 60.0),
    max_kl=st.sampled_from([0.002, 0.01, 0.05]),
)
def test_every_accepted_step_keeps_the_kl_bound_and_the_cost_budget(
    collected, name: str, episode_cost: float, max_kl: float
) -> None:
    actor_critic, batch = copy.deepcopy(collected[0]), collected[1]
    strategy = STRATEGIES[name]()
    algo = NaturalGradient(actor_critic, strategy, max_kl=max_kl, **SMALL)
    before = flat_params(algo.policy_params)
    reward_0, cost_0, _ = surrogates(actor_critic, batch)
    metrics = algo.update(batch, torch.tensor([episode_cost]))
    reward_1, cost_1, kl = surrogates(actor_critic, batch)
    excess = strategy.cost_excess(torch.tensor([episode_cost]))[0]
    if metrics["step_accepted"]:
        assert kl <= max_kl * (1 + 1e-5)  # measured here in float32, as the base did
        assert math.isclose(kl, metrics["kl"], rel_tol=1e-4, abs_tol=1e-9)
        assert cost_1 - cost_0 <= max(-excess, 0.0) + 1e-7
        if name.startswith("cpo") and metrics["strategy/case"] >= 2:
            assert reward_1 - reward_0 >= -1e-7
        assert metrics["line_search_steps"] <= strategy.line_search_steps
    else:
        assert torch.equal(flat_params(algo.policy_params), before)


def test_far_below_the_limit_cpo_takes_the_trpo_reward_step(collected) -> None:
    """Case 3: d = sqrt(2 delta / q) x, the KL-scaled natural reward step of plain TRPO (the two
    line searches may accept different fractions of it)."""
    full_steps, modes = [], []
    for strategy in (CPO(cost_limit=25.0), make_strategy("reward_only")):
        actor_critic = copy.deepcopy(collected[0])
        algo = NaturalGradient(actor_critic, strategy, max_kl=0.01, kl_slack=1.0, **SMALL)
        before = flat_params(algo.policy_params)
        metrics = algo.update(collected[1], torch.tensor([0.0]))
        assert metrics["step_accepted"] == 1.0
        full_steps.append((flat_params(algo.policy_params) - before) / metrics["step_fraction"])
        modes.append(metrics["strategy/mode"])
    assert modes == [1.0, 1.0]
    torch.testing.assert_close(full_steps[0], full_steps[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["cpo", "pcpo"])
@pytest.mark.parametrize("episode_cost", [0.0, 60.0])
def test_rules_step_away_from_the_limit_and_log_their_diagnostics(
    collected, name: str, episode_cost: float
) -> None:
    strategy = make_strategy(name, cost_limit=25.0)
    algo = NaturalGradient(copy.deepcopy(collected[0]), strategy, max_kl=0.01, **SMALL)
    metrics = algo.update(collected[1], torch.tensor([episode_cost]))
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert metrics["step_accepted"] == 1.0 and metrics["kl"] <= 0.01
    assert metrics["surrogate_improvement"] > 0  # the rule's Lagrangian surrogate improved
    for diagnostic in strategy.diagnostic_names:
        assert f"strategy/{diagnostic}" in metrics, diagnostic


def test_recovery_lowers_the_cost_surrogate(collected) -> None:
    actor_critic = copy.deepcopy(collected[0])
    algo = NaturalGradient(actor_critic, CPO(cost_limit=25.0), max_kl=0.01, **SMALL)
    _, cost_0, _ = surrogates(actor_critic, collected[1])
    metrics = algo.update(collected[1], torch.tensor([60.0]))
    _, cost_1, _ = surrogates(actor_critic, collected[1])
    assert metrics["strategy/case"] == 0.0 and metrics["strategy/mode"] == 2.0
    assert metrics["step_accepted"] == 1.0 and cost_1 < cost_0
    assert metrics["cost_improvement"] > 0 and metrics["reward_weight"] == 0.0


def test_pcpo_in_step_units_reads_the_measured_episode_length(collected) -> None:
    strategy = PCPO(cost_limit=25.0, cost_units="step", episode_length=1.0)
    algo = NaturalGradient(copy.deepcopy(collected[0]), strategy, **SMALL)
    metrics = algo.update(collected[1], torch.tensor([35.0]), episode_length=100.0)
    assert math.isclose(metrics["strategy/cost_excess"], 0.1)
    metrics = algo.update(collected[1], torch.tensor([35.0]))  # the last length stands in
    assert math.isclose(metrics["strategy/cost_excess"], 0.1)
    restored = NaturalGradient(copy.deepcopy(collected[0]), strategy, **SMALL)
    restored.load_state_dict(algo.state_dict())  # a checkpoint keeps it
    metrics = restored.update(collected[1], torch.tensor([35.0]))
    assert math.isclose(metrics["strategy/cost_excess"], 0.1)


def test_delayed_safety_runs_trpo_then_the_rule(collected) -> None:
    strategy = DelayedSafety(CPO(cost_limit=25.0), start_epoch=1)
    algo = NaturalGradient(copy.deepcopy(collected[0]), strategy, **SMALL)
    cost = torch.tensor([60.0])
    strategy.update_state(cost)
    warm_up = algo.update(collected[1], cost)
    strategy.update_state(cost)
    active = algo.update(collected[1], cost)
    assert warm_up["strategy/safety_active"] == 0.0 and warm_up["strategy/mode"] == 1.0
    assert active["strategy/safety_active"] == 1.0 and active["strategy/case"] == 0.0
    diagnostics = [{k for k in m if k.startswith("strategy/")} for m in (warm_up, active)]
    assert diagnostics[0] == diagnostics[1] and set(warm_up) <= set(active)


def test_ppo_refuses_trust_region_strategies(collected) -> None:
    for strategy in (CPO(), DelayedSafety(PCPO(), 3)):
        with pytest.raises(ValueError, match="algo=trpo"):
            PPO(copy.deepcopy(collected[0]), strategy)


# ----------------------------------------------------------------- the line search alone
def toy_search(values: list[tuple[list[float], float]], **kwargs):
    """Line search on a 1-parameter model whose k-th evaluation returns ``values[k]``
    (surrogates [1 + K], KL); the first evaluation is the base point."""
    theta = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    calls = iter(values)

    def evaluate():
        objectives, kl = next(calls)
        return torch.tensor(objectives, dtype=torch.float64), torch.tensor(kl)

    settings_ = {
        "max_cost_increase": [0.0],
        "require_reward_gain": True,
        "max_steps": 3,
        "backtrack_factor": 0.5,
        **kwargs,
    }
    result = constrained_line_search(
        [theta], torch.ones(1, dtype=torch.float64), evaluate, 0.01, **settings_
    )
    return result, float(theta.detach())


def test_line_search_tests_kl_cost_and_reward_in_turn() -> None:
    base = ([0.0, 0.0], 0.0)
    too_far = ([1.0, 0.0], 0.02)  # KL above the radius
    costly = ([1.0, -0.1], 0.005)  # the cost surrogate E[ratio A_c] rose by 0.1
    worse = ([-0.1, 0.0], 0.005)  # the reward surrogate fell
    good = ([0.5, 0.1], 0.005)
    result, theta = toy_search([base, too_far, costly, good], max_steps=3)
    assert result.accepted and result.fraction == 0.25 and theta == 0.25
    assert result.improvement == 0.5 and result.steps == 3
    result, theta = toy_search([base, too_far, costly, worse])
    assert not result.accepted and theta == 0.0
    result, _ = toy_search([base, worse], require_reward_gain=False, max_steps=1)
    assert result.accepted
    result, _ = toy_search([base, costly], max_cost_increase=[0.1], max_steps=1)
    assert result.accepted


def test_line_search_takes_no_zero_step_and_checks_settings() -> None:
    theta = nn.Parameter(torch.zeros(1))
    common = {"max_cost_increase": [0.0], "require_reward_gain": False, "max_steps": 2}
    result = constrained_line_search(
        [theta], torch.zeros(1), lambda: 1 / 0, 0.01, backtrack_factor=0.5, **common
    )
    assert not result.accepted and result.steps == 0
    with pytest.raises(ValueError, match="backtrack_factor"):
        constrained_line_search(
            [theta], torch.ones(1), lambda: None, 0.01, backtrack_factor=1.0, **common
        )
