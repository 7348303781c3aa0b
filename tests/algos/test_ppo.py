"""PPO base: surrogate maths, the sign of each objective's step, every strategy on a real task."""

import functools
import io
import math

import pytest
import torch
from tensordict import TensorDict
from torch.distributions import Independent, Normal, kl_divergence
from torchrl.envs.utils import ExplorationType, set_exploration_type

import safe_envs
from gradmanip.algos import PPO
from gradmanip.fast.fused_adam import FusedAdamSteps
from gradmanip.gaussian import gaussian_kl, gaussian_log_prob
from gradmanip.objectives import clipped_surrogates
from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.models import make_actor_critic
from gradmanip.strategies import (
    TrustRegionStrategy,
    available_strategies,
    make_strategy,
    strategy_class,
)

TASK = "SafetyPointVelocity-v0"


def flat_params(module):
    return torch.cat([p.detach().reshape(-1).clone() for p in module.parameters()])


@functools.lru_cache(maxsize=1)
def collected_batch():
    """400 real steps of the toy task with reward and cost advantages (cached, cloned on use)."""
    actor_critic = make_actor_critic(1, 1, seed=3)
    collector = make_collector(
        functools.partial(safe_envs.make_env, TASK, seed=3),
        GaussianPolicy(actor_critic.policy_net),
        frames_per_batch=400,
        seed=3,
    )
    batch = next(iter(collector))
    collector.shutdown()
    SafeAdvantages(actor_critic.reward_critic, actor_critic.cost_critic)(batch)
    return batch


def through_disk(state):
    """What a checkpoint file does: serialise and load back (no shared tensors)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def fresh(seed=3):
    return make_actor_critic(1, 1, seed=seed), collected_batch().clone().reshape(-1)


def reward_only_ppo(actor_critic, **settings) -> PPO:
    """PPO without a constraint: the tests of the base's own mechanics."""
    return PPO(actor_critic, make_strategy("reward_only"), **settings)


def test_log_prob_and_kl_match_torch_distributions():
    loc, scale = torch.randn(5, 3), torch.rand(5, 3) + 0.1
    action = torch.randn(5, 3)
    dist = Independent(Normal(loc, scale), 1)
    torch.testing.assert_close(gaussian_log_prob(action, loc, scale), dist.log_prob(action))
    loc2, scale2 = torch.randn(5, 3), torch.rand(5, 3) + 0.1
    other = Independent(Normal(loc2, scale2), 1)
    torch.testing.assert_close(gaussian_kl(loc, scale, loc2, scale2), kl_divergence(dist, other))


def test_collection_log_prob_equals_update_log_prob():
    batch = collected_batch()
    recomputed = gaussian_log_prob(batch["action"], batch["loc"], batch["scale"])
    torch.testing.assert_close(recomputed, batch["action_log_prob"])


def test_clipped_surrogates_by_hand():
    ratio = torch.tensor([0.5, 1.0, 1.5])
    adv = torch.tensor([1.0, -2.0, 1.0])
    cost_adv = torch.tensor([[1.0], [1.0], [-1.0]])
    reward, cost = clipped_surrogates(ratio, adv, cost_adv, clip_epsilon=0.2)
    # reward: min(0.5*1, 0.8*1)=0.5; min(-2, -2)=-2; min(1.5, 1.2)=1.2
    assert reward.item() == pytest.approx((0.5 - 2.0 + 1.2) / 3)
    # cost (pessimistic = max): max(0.5, 0.8)=0.8; 1.0; max(-1.5, -1.2)=-1.2
    assert cost.tolist() == pytest.approx([(0.8 + 1.0 - 1.2) / 3])


def test_reward_only_step_raises_probability_of_good_actions():
    actor_critic, batch = fresh()
    obs = batch["observation"]
    advantage = batch["action"].squeeze(-1).sign()  # actions above zero are "good"
    batch["advantage"] = advantage.unsqueeze(-1)
    algo = reward_only_ppo(actor_critic, lr=1e-3, epochs=1, minibatch_size=400, target_kl=None)
    algo.update(batch, torch.tensor([0.0]))
    loc, scale = actor_critic.policy_net(obs)
    new_log_prob = gaussian_log_prob(batch["action"], loc, scale)
    change = new_log_prob - batch["action_log_prob"]
    assert (change * advantage).mean() > 0


def test_cost_only_step_lowers_probability_of_costly_actions():
    actor_critic, batch = fresh()
    cost_advantage = batch["action"].squeeze(-1).sign()  # actions above zero are "costly"
    batch["cost_advantage"] = cost_advantage.unsqueeze(-1)
    strategy = make_strategy("hard_switch", cost_limit=1.0)  # J_c_hat = 5 > 1: cost only
    algo = PPO(actor_critic, strategy, lr=1e-3, epochs=1, minibatch_size=400, target_kl=None)
    metrics = algo.update(batch, torch.tensor([5.0]))
    assert metrics["strategy/mode"] == 2.0
    loc, scale = actor_critic.policy_net(batch["observation"])
    change = gaussian_log_prob(batch["action"], loc, scale) - batch["action_log_prob"]
    assert (change * cost_advantage).mean() < 0


EXPECTED_DIAGNOSTICS = {
    "soft_switch": ["strategy/mode", "strategy/cosine"],
    "hard_switch": ["strategy/mode"],
    "lagrangian": ["strategy/lagrange_multiplier"],
    "pid_lagrangian": ["strategy/lagrange_multiplier"],
}


# trust-region rules (CPO, PCPO) need the natural-gradient base; PPO refuses them
FIRST_ORDER = [
    name
    for name in available_strategies()
    if not issubclass(strategy_class(name), TrustRegionStrategy)
]


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_every_strategy_updates_the_policy_with_finite_losses(name):
    actor_critic, batch = fresh()
    before = flat_params(actor_critic.actor)
    critic_before = flat_params(actor_critic.cost_critic)
    strategy = make_strategy(name)
    algo = PPO(actor_critic, strategy, epochs=2, minibatch_size=64, target_kl=None)
    metrics = algo.update(batch, torch.tensor([30.0]))
    assert all(math.isfinite(v) for k, v in metrics.items() if k.startswith("loss"))
    assert math.isfinite(metrics["kl"]) and metrics["kl"] >= 0
    assert metrics["minibatch_steps"] == 2 * math.ceil(400 / 64)
    assert not torch.equal(before, flat_params(actor_critic.actor))
    assert not torch.equal(critic_before, flat_params(actor_critic.cost_critic))
    for key in EXPECTED_DIAGNOSTICS.get(name, []):
        assert key in metrics and math.isfinite(metrics[key])


def test_kl_early_stopping_stops_after_first_pass():
    actor_critic, batch = fresh()
    algo = reward_only_ppo(actor_critic, lr=1e-2, epochs=10, minibatch_size=64, target_kl=1e-9)
    metrics = algo.update(batch, torch.tensor([0.0]))
    assert metrics["passes"] == 1 and metrics["kl"] > 1e-9


def test_linear_learning_rate_schedule():
    actor_critic, batch = fresh()
    algo = reward_only_ppo(
        actor_critic, lr=1e-3, epochs=1, minibatch_size=400, target_kl=None, lr_schedule_updates=4
    )
    lrs = [algo.update(batch, torch.tensor([0.0]))["lr"] for _ in range(3)]
    assert lrs == pytest.approx([1e-3, 7.5e-4, 5e-4])
    assert algo.actor_optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)


def test_state_dict_round_trip_reproduces_the_next_update():
    actor_critic, batch = fresh()
    algo = reward_only_ppo(
        actor_critic,
        epochs=1,
        minibatch_size=100,
        target_kl=None,
        generator=torch.Generator().manual_seed(0),
    )
    algo.update(batch, torch.tensor([0.0]))
    twin_networks = make_actor_critic(1, 1, seed=99)
    twin_networks.actor.load_state_dict(actor_critic.actor.state_dict())
    twin_networks.reward_critic.load_state_dict(actor_critic.reward_critic.state_dict())
    twin_networks.cost_critic.load_state_dict(actor_critic.cost_critic.state_dict())
    twin = reward_only_ppo(twin_networks, epochs=1, minibatch_size=100, target_kl=None)
    state = through_disk(algo.state_dict())
    # 400 samples in minibatches of 100: 4 Adam steps recorded for every parameter
    for name in ("actor_optimizer", "critic_optimizer"):
        assert [float(s["step"]) for s in state[name]["state"].values()] == [4.0] * len(
            state[name]["state"]
        )
    twin.load_state_dict(state)
    algo.update(batch, torch.tensor([0.0]))
    twin.update(batch, torch.tensor([0.0]))
    torch.testing.assert_close(flat_params(actor_critic.actor), flat_params(twin_networks.actor))
    torch.testing.assert_close(
        flat_params(actor_critic.critics()), flat_params(twin_networks.critics())
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": 0.0}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"minibatch_size": 2.5}, "minibatch_size"),
        ({"clip_epsilon": -0.1}, "clip_epsilon"),
        ({"entropy_coef": -1.0}, "entropy_coef"),
        ({"target_kl": 0.0}, "target_kl"),
        ({"lr_schedule_updates": 0}, "lr_schedule_updates"),
    ],
)
def test_bad_settings_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PPO(make_actor_critic(1, 1), make_strategy("reward_only"), **kwargs)


def test_bad_objects_and_missing_keys_are_reported():
    with pytest.raises(TypeError, match="strategy"):
        PPO(make_actor_critic(1, 1), "soft_switch")
    algo = PPO(make_actor_critic(1, 1), make_strategy("reward_only"))
    batch = TensorDict({"observation": torch.zeros(4, 1)}, [4])
    with pytest.raises(KeyError, match="advantage"):
        algo.update(batch, torch.tensor([0.0]))
    assert "minibatch_size=64" in repr(algo)


@pytest.mark.parametrize("lean", [True, False])
def test_non_finite_advantages_raise_or_skip(lean):
    actor_critic, batch = fresh()
    batch["advantage"][0] = float("nan")
    algo = reward_only_ppo(actor_critic, epochs=1, minibatch_size=400, target_kl=None, lean=lean)
    with pytest.raises(FloatingPointError, match="reward"):
        algo.update(batch, torch.tensor([0.0]))
    before = flat_params(actor_critic.actor)
    algo = reward_only_ppo(
        actor_critic, epochs=1, minibatch_size=400, target_kl=None, lean=lean, on_nonfinite="skip"
    )
    critics_before = flat_params(actor_critic.critics())
    metrics = algo.update(batch, torch.tensor([0.0]))
    assert metrics["skipped_steps"] == 1
    torch.testing.assert_close(flat_params(actor_critic.actor), before)
    # the critics still learn; the skipped actor step is not counted by its optimizer
    assert not torch.equal(flat_params(actor_critic.critics()), critics_before)
    actor_steps = [float(s.get("step", 0.0)) for s in algo.actor_optimizer.state.values()]
    critic_steps = [float(s["step"]) for s in algo.critic_optimizer.state.values()]
    assert set(actor_steps) <= {0.0} and critic_steps == [1.0] * len(algo.critic_params)


def test_fused_adam_steps_equal_torch_adam():
    """Flat-buffer fused Adam steps (skippable per optimizer) reproduce ``optimizer.step()`` to
    the last bit of float32 (the kernel's vector and tail loops may round apart), with gradients
    written into flat buffers in any layout, and the state stays in the optimizers."""
    torch.manual_seed(0)
    shapes = [(4, 3), (4,), (2, 4)]

    def make(lrs):
        params = [[torch.randn(*shape, requires_grad=True) for shape in shapes] for _ in lrs]
        return params, [
            torch.optim.Adam(group, lr=lr, betas=(0.8, 0.99), fused=True)
            for group, lr in zip(params, lrs, strict=True)
        ]

    def views(flat, order):
        """Per-parameter views of ``flat`` laid out in ``order`` (a permutation)."""
        offsets, offset = {}, 0
        for index in order:
            offsets[index] = offset
            offset += math.prod(shapes[index])
        return [flat[offsets[i] : offsets[i] + math.prod(s)].view(s) for i, s in enumerate(shapes)]

    total = sum(math.prod(s) for s in shapes)
    for lrs in ([1e-2, 1e-2], [1e-2, 3e-3]):
        torch.manual_seed(1)
        ours, our_optimizers = make(lrs)
        torch.manual_seed(1)
        reference, reference_optimizers = make(lrs)
        flats = [torch.zeros(total), torch.zeros(total)]
        grad_views = [views(flats[0], [0, 1, 2]), views(flats[1], [2, 0, 1])]
        stepper = FusedAdamSteps(our_optimizers, grad_views)
        assert "optimizers=2" in repr(stepper)
        for step in range(4):
            grads = [[torch.randn(*shape) for shape in shapes] for _ in lrs]
            active = [True, step != 1]  # the second optimizer skips one step
            for group, grad, optimizer, on in zip(
                reference, grads, reference_optimizers, active, strict=True
            ):
                if on:
                    for param, g in zip(group, grad, strict=True):
                        param.grad = g.clone()
                    optimizer.step()
            for targets, grad in zip(grad_views, grads, strict=True):
                for target, g in zip(targets, grad, strict=True):
                    target.copy_(g)
            stepper.step(active)
        for mine, theirs in zip(our_optimizers, reference_optimizers, strict=True):
            torch.testing.assert_close(
                [p.detach() for p in mine.param_groups[0]["params"]],
                [p.detach() for p in theirs.param_groups[0]["params"]],
                rtol=1e-6,
                atol=1e-8,
            )
            ours_state, their_state = mine.state_dict()["state"], theirs.state_dict()["state"]
            for index, values in their_state.items():
                for key, value in values.items():
                    torch.testing.assert_close(ours_state[index][key], value, rtol=1e-6, atol=1e-8)
    params = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="fused Adam"):
        FusedAdamSteps([torch.optim.Adam(params)], [[torch.zeros(2)]])
    with pytest.raises(ValueError, match="tile one flat buffer"):
        flat = torch.zeros(5)
        FusedAdamSteps([torch.optim.Adam(params, fused=True)], [[flat[:2], flat[3:]]])


def test_collection_policy_samples_around_the_mean_and_is_deterministic_for_evaluation():
    actor_critic = make_actor_critic(2, 3, seed=0)
    policy = GaussianPolicy(actor_critic.policy_net)
    data = TensorDict({"observation": torch.randn(1000, 2)}, [1000])
    sampled = policy(data.clone())
    noise = (sampled["action"] - sampled["loc"]) / sampled["scale"]
    assert abs(noise.mean().item()) < 0.1 and abs(noise.std().item() - 1.0) < 0.1
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        greedy = policy(data.clone())
    torch.testing.assert_close(greedy["action"], greedy["loc"])
