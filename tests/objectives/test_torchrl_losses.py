"""Per-objective losses as TorchRL loss modules, and the proof that a TorchRL loop with a strategy
is this library's PPO: same batch, same update."""

from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
from tensordict import TensorDict
from torchrl.objectives import A2CLoss, ClipPPOLoss, KLPENPPOLoss

import safe_envs
from gradmanip.algos import PPO
from gradmanip.driver import GradientDriver
from gradmanip.gaussian import gaussian_log_prob
from gradmanip.objectives import PerObjectiveLoss, SafePPOLoss
from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.models import make_actor_critic
from gradmanip.strategies import make_strategy


def synthetic_batch(num_constraints: int = 1, size: int = 16, seed: int = 0) -> TensorDict:
    """A batch of a 3-d observation, 2-d action task whose log-probs come from the actor of
    ``make_actor_critic(3, 2, seed=0)`` shifted a little (ratios off 1 and some clipped)."""
    generator = torch.Generator().manual_seed(seed)
    nets = make_actor_critic(3, 2, seed=0)
    batch = TensorDict(
        observation=torch.randn(size, 3, generator=generator),
        action=torch.randn(size, 2, generator=generator),
        advantage=torch.randn(size, 1, generator=generator),
        cost_advantage=torch.randn(size, num_constraints, generator=generator),
        value_target=torch.randn(size, 1, generator=generator),
        cost_value_target=torch.randn(size, num_constraints, generator=generator),
        batch_size=[size],
    )
    with torch.no_grad():
        loc, scale = nets.policy_net(batch["observation"])
        shift = 0.3 * torch.randn(size, generator=generator)
        batch["action_log_prob"] = gaussian_log_prob(batch["action"], loc, scale) + shift
        batch["loc"], batch["scale"] = loc, scale.expand_as(loc)  # (KLPENPPOLoss reads them)
    return batch


def test_safe_ppo_loss_against_hand_computed_surrogates():
    nets = make_actor_critic(3, 2, seed=0)
    batch = synthetic_batch(num_constraints=2)
    loss = SafePPOLoss(
        nets.actor, nets.reward_critic, nets.cost_critic, clip_epsilon=0.2, entropy_coeff=0.01
    )
    out = loss(batch)
    loc, scale = nets.policy_net(batch["observation"])
    ratio = (gaussian_log_prob(batch["action"], loc, scale) - batch["action_log_prob"]).exp()
    clipped = ratio.clamp(0.8, 1.2)
    a_r, a_c = batch["advantage"][:, 0], batch["cost_advantage"]
    reward = torch.min(ratio * a_r, clipped * a_r).mean()
    cost = torch.max(ratio[:, None] * a_c, clipped[:, None] * a_c).mean(0)
    entropy = (scale.log() + 0.5 + 0.5 * math.log(2 * math.pi)).sum(-1).mean()
    torch.testing.assert_close(out["loss_objective"], -reward)
    torch.testing.assert_close(out["loss_cost_objective"], cost)
    torch.testing.assert_close(out["loss_entropy"], -0.01 * entropy)
    torch.testing.assert_close(out["clip_fraction"], ((ratio - 1).abs() > 0.2).float().mean())
    value = nets.reward_critic.module(batch["observation"])
    cost_value = nets.cost_critic.module(batch["observation"])
    critic = (value - batch["value_target"]).square().mean() + (
        cost_value - batch["cost_value_target"]
    ).square().mean()
    torch.testing.assert_close(out["loss_critic"], critic)
    assert out["loss_cost_objective"].shape == (2,)
    unclipped = SafePPOLoss(nets.actor, clip_epsilon=None)(batch)
    torch.testing.assert_close(unclipped["loss_objective"], -(ratio * a_r).mean())
    assert "loss_critic" not in unclipped


def test_safe_ppo_loss_keys_are_renamable_and_inputs_checked():
    nets = make_actor_critic(3, 2, seed=0)
    batch = synthetic_batch()
    renamed = batch.rename_key_("advantage", "adv_r").rename_key_("cost_advantage", ("c", "adv"))
    loss = SafePPOLoss(nets.actor)
    loss.set_keys(advantage="adv_r", cost_advantage=("c", "adv"))
    expected = SafePPOLoss(nets.actor)(synthetic_batch())
    torch.testing.assert_close(loss(renamed)["loss_objective"], expected["loss_objective"])
    assert "adv_r" in loss.in_keys and "loss_cost_objective" in loss.out_keys
    with pytest.raises(ValueError, match="not an accepted tensordict key"):
        loss.set_keys(advantages="x")
    with pytest.raises(TypeError, match="probabilistic actor"):
        SafePPOLoss(nets.reward_critic)
    with pytest.raises(ValueError, match="both reward_critic and cost_critic"):
        SafePPOLoss(nets.actor, nets.reward_critic)
    with pytest.raises(ValueError, match="clip_epsilon"):
        SafePPOLoss(nets.actor, clip_epsilon=0.0)


@pytest.mark.parametrize("loss_class", [ClipPPOLoss, KLPENPPOLoss, A2CLoss])
def test_stock_losses_per_objective(loss_class):
    nets = make_actor_critic(3, 2, seed=0)
    batch = synthetic_batch(num_constraints=2)
    losses = PerObjectiveLoss.from_loss(
        loss_class, nets.actor, 2, critic_network=nets.reward_critic, entropy_bonus=False
    )
    out = losses(batch)
    # each cost loss is the reward loss of the negated cost advantage column
    for k in range(2):
        flipped = batch.clone()
        flipped["advantage"] = -batch["cost_advantage"][:, k : k + 1]
        expected = losses.reward_loss(flipped)["loss_objective"]
        torch.testing.assert_close(out["loss_cost_objective"][k], expected)
    assert "negated_cost_advantage_0" not in batch  # the input is left alone
    if loss_class is ClipPPOLoss:  # the stock pair equals SafePPOLoss's entries
        ours = SafePPOLoss(nets.actor)(batch)
        torch.testing.assert_close(out["loss_objective"], ours["loss_objective"])
        torch.testing.assert_close(out["loss_cost_objective"], ours["loss_cost_objective"])
    with pytest.raises(ValueError, match="3 constraint"):
        losses(synthetic_batch(num_constraints=3))
    with pytest.raises(ValueError, match="num_constraints must be >= 1"):
        PerObjectiveLoss.from_loss(loss_class, nets.actor, 0)


def test_driver_backward_reads_the_loss_entries():
    nets = make_actor_critic(3, 2, seed=0)
    batch = synthetic_batch()
    strategy = make_strategy("soft_switch", cost_limit=25.0, upper_slack=9.0, lower_slack=-9.0)
    driver = GradientDriver(nets.actor.parameters(), strategy)
    loss = SafePPOLoss(nets.actor, entropy_coeff=0.01)
    result = driver.backward(loss(batch), 25.0)
    grads = torch.cat([p.grad.reshape(-1) for p in driver.params]).clone()
    out = loss(batch)
    expected = driver.step(
        out["loss_objective"] + out["loss_entropy"], out["loss_cost_objective"], 25.0
    )
    torch.testing.assert_close(grads, -expected.update)
    assert int(result.diagnostic_values["mode"]) == 0
    renamed = TensorDict(r=out["loss_objective"], c=out["loss_cost_objective"]).detach()
    with pytest.raises(KeyError, match="set_keys"):
        driver.backward(renamed, 25.0)
    out = loss(batch)
    renamed = TensorDict(r=out["loss_objective"], c=out["loss_cost_objective"])
    driver.set_keys(reward="r", cost="c").backward(renamed, 25.0)


@functools.lru_cache(maxsize=1)
def collected_batch():
    """400 real steps of the toy task with reward and cost advantages."""
    nets = make_actor_critic(1, 1, seed=3)
    collector = make_collector(
        functools.partial(safe_envs.make_env, "SafetyPointVelocity-v0", seed=3),
        GaussianPolicy(nets.policy_net),
        frames_per_batch=400,
        seed=3,
    )
    batch = next(iter(collector))
    collector.shutdown()
    SafeAdvantages(nets.reward_critic, nets.cost_critic)(batch)
    return batch.reshape(-1)


@pytest.mark.parametrize(
    ("name", "settings", "episode_cost"),
    [
        ("soft_switch", {"cost_limit": 5.0, "upper_slack": 2.0, "lower_slack": -2.0}, 6.0),
        ("hard_switch", {"cost_limit": 5.0}, 7.0),
        ("lagrangian", {"cost_limit": 5.0}, 9.0),
    ],
)
@pytest.mark.parametrize("lean", [True, False])
def test_torchrl_loop_gives_the_same_update_as_the_ppo_base(name, settings, episode_cost, lean):
    """One batch, three full-batch steps (a large learning rate, so that the later steps clip
    some ratios): ClipPPOLoss pair + driver + torch.optim.Adam == PPO.update."""
    batch = collected_batch().clone().double()  # float64: equal to rounding, not to 1e-7
    nets = make_actor_critic(1, 1, seed=3)
    nets = type(nets)(
        *(module.double() for module in (nets.actor, nets.reward_critic, nets.cost_critic))
    )
    stock_nets = copy.deepcopy(nets)
    strategy = make_strategy(name, **settings)
    stock_strategy = make_strategy(name, **settings)
    for s in (strategy, stock_strategy):
        s.update_state([episode_cost])  # e.g. the Lagrange multiplier's first step
    ppo = PPO(
        nets,
        strategy,
        lr=0.03,
        epochs=3,
        minibatch_size=len(batch),
        target_kl=None,
        max_grad_norm=0.5,
        lean=lean,
        generator=torch.Generator().manual_seed(0),
    )
    ppo.update(batch.clone(), torch.tensor([episode_cost], dtype=torch.float64))
    assert ppo.lean == lean

    losses = PerObjectiveLoss.from_loss(
        ClipPPOLoss, stock_nets.actor, 1, clip_epsilon=0.2, entropy_bonus=False
    )
    driver = GradientDriver(stock_nets.actor.parameters(), stock_strategy)
    optimizer = torch.optim.Adam(stock_nets.actor.parameters(), lr=0.03)
    clipped = []
    for _ in range(3):
        out = losses(batch.clone())
        clipped.append(float(out["clip_fraction"]))
        driver.backward(out, episode_cost, max_norm=0.5)
        optimizer.step()
    assert clipped[0] == 0 and clipped[-1] > 0  # the clip is exercised

    for ours, theirs in zip(nets.actor.parameters(), stock_nets.actor.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-9)
    initial = make_actor_critic(1, 1, seed=3).actor.double().parameters()
    pairs = zip(nets.actor.parameters(), initial, strict=True)
    moved = sum(float((p - q).detach().abs().max()) for p, q in pairs)
    assert moved > 1e-5  # the step is not trivially zero
