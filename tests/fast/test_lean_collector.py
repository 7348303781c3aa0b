"""LeanCollector: the batches of TorchRL's Collector (same seed, same policy noise), faster."""

import copy
import functools

import gymnasium
import pytest
import torch
from torchrl.collectors import BaseCollector
from torchrl.envs.utils import ExplorationType

import safe_envs
from gradmanip.algos import PPO
from gradmanip.fast.lean_collector import LeanCollector, make_lean_collector
from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.episodes import EpisodeTracker
from gradmanip.rl.models import make_actor_critic
from gradmanip.rl.trainer import Trainer
from gradmanip.strategies import make_strategy

POINT = "SafetyPointVelocity-v0"
HOPPER = "SafetyHopperVelocity-v1"
POINT_2 = "SafetyPointVelocityEffort-v0"  # K = 2 constraints
HOPPER_2 = "SafetyHopperVelocityEffort-v1"
NOISE_SEED = 123


def seeded_gym(env_id: str, seed: int, **task_kwargs) -> gymnasium.Env:
    """A Gymnasium env seeded at construction, like ``safe_envs.make_env(seed=...)``."""
    env = gymnasium.make(env_id, **task_kwargs)
    env.reset(seed=seed)
    return env


def dims(env_id: str) -> tuple[int, int]:
    env = gymnasium.make(env_id)
    sizes = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    return sizes


def collect(backend: str, env_id: str, policy_net, *, normalize: bool, reset: bool, **task):
    """Three batches, reseeded before each as the Trainer does; the policy noise is reseeded
    after construction (TorchRL's constructor draws from torch's generator)."""
    if backend == "torchrl":
        env_fn = functools.partial(
            safe_envs.make_env, env_id, seed=5, normalize_obs=normalize, **task
        )
        collector = make_collector(
            env_fn,
            GaussianPolicy(policy_net),
            frames_per_batch=60,
            seed=3,
            reset_each_epoch=reset,
        )
    else:
        norm = safe_envs.RunningObsNorm((dims(env_id)[0],)) if normalize else None
        collector = make_lean_collector(
            functools.partial(seeded_gym, env_id, 5, **task),
            policy_net,
            frames_per_batch=60,
            seed=3,
            reset_each_epoch=reset,
            obs_norm=norm,
            num_costs=safe_envs.num_costs(env_id),
        )
    torch.manual_seed(NOISE_SEED)
    batches = iter(collector)
    out = []
    for epoch in range(3):
        collector.set_seed(100 + epoch)
        out.append(next(batches))
    state = collector.state_dict()
    collector.shutdown()
    return out, state


CASES = [
    # point: truncation at max_episode_steps and non-zero costs; fresh episodes every batch
    (POINT, True, True, {"max_episode_steps": 25, "speed_threshold": 0.2}),
    # hopper: terminations inside batches; episodes continue across batches
    (HOPPER, True, False, {"max_episode_steps": 40, "velocity_threshold": 0.3}),
    (HOPPER, False, False, {"max_episode_steps": 40}),
    # two constraints: costs [T, 2] from info["costs"]
    (POINT_2, True, True, {"max_episode_steps": 25, "speed_threshold": 0.2}),
    (HOPPER_2, True, False, {"max_episode_steps": 40, "velocity_threshold": 0.3}),
]


@pytest.mark.parametrize(("env_id", "normalize", "reset", "task"), CASES)
def test_batches_equal_torchrl_collector(env_id, normalize, reset, task):
    policy_net = make_actor_critic(*dims(env_id), seed=0).policy_net
    expected, expected_state = collect(
        "torchrl", env_id, policy_net, normalize=normalize, reset=reset, **task
    )
    actual, actual_state = collect(
        "lean", env_id, policy_net, normalize=normalize, reset=reset, **task
    )
    for want, got in zip(expected, actual, strict=True):
        assert got.batch_size == want.batch_size == torch.Size([60])
        assert set(got.keys(True, True)) == set(want.keys(True, True))
        for key in want.keys(True, True):
            assert got[key].shape == want[key].shape, key
            assert got[key].dtype == want[key].dtype, key
            torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-5, msg=str(key))
    # the comparison covered episode ends inside batches, and truncation for the point task
    ends = torch.stack([b["next", "done"] for b in expected])
    assert ends.any()
    k = safe_envs.num_costs(env_id)
    assert actual[0]["next", "cost"].shape == actual[0]["cost"].shape == (60, k)
    if env_id in (POINT, POINT_2):
        assert torch.stack([b["next", "truncated"] for b in expected]).any()
        assert torch.stack([b["next", "cost"] for b in expected]).any(dim=(0, 1)).all()
        assert torch.stack([b["cost"] for b in expected]).any(dim=(0, 1)).all()
    assert actual_state["frames"] == expected_state["frames"] == 180
    assert actual_state["iter"] == expected_state["iter"]
    want_stats, got_stats = expected_state["env_state_dict"], actual_state["env_state_dict"]
    assert set(got_stats) == set(want_stats)
    for key in want_stats:
        torch.testing.assert_close(got_stats[key], want_stats[key], rtol=1e-9, atol=1e-9)


def lean_hopper(policy_net, **kwargs) -> LeanCollector:
    return make_lean_collector(
        functools.partial(seeded_gym, HOPPER, 0),
        policy_net,
        obs_norm=safe_envs.RunningObsNorm((11,)),
        **kwargs,
    )


def test_trainer_runs_with_lean_collector_and_resumes_exactly():
    def build():
        actor_critic = make_actor_critic(11, 3, seed=0)
        collector = lean_hopper(
            actor_critic.policy_net, frames_per_batch=64, seed=0, reset_each_epoch=True
        )
        algo = PPO(
            actor_critic,
            make_strategy("lagrangian", cost_limit=25.0),
            epochs=2,
            minibatch_size=32,
            target_kl=None,
            generator=torch.Generator().manual_seed(0),
        )
        advantages = SafeAdvantages(actor_critic.reward_critic, actor_critic.cost_critic)
        return Trainer(
            collector, algo, actor_critic, advantages, EpisodeTracker(carry_over=False), seed=1
        )

    torch.manual_seed(0)
    trainer = build()
    assert isinstance(trainer.collector, BaseCollector)
    history = trainer.train(2)
    state = copy.deepcopy(trainer.state_dict())  # live tensors: snapshot before training on
    reference = trainer.train(1)[0]
    assert history[-1]["frames"] == 128.0 and reference["frames"] == 192.0
    assert all(torch.isfinite(torch.tensor(v)) for v in reference.values())

    resumed = build()
    resumed.load_state_dict(state)
    again = resumed.run_epoch()
    for key in ("loss/reward", "loss/value", "loss/cost_value", "frames"):
        assert again[key] == reference[key], key
    assert resumed.collector.state_dict()["frames"] == trainer.collector.state_dict()["frames"]


class OpaqueNorm:
    """A normaliser without the running-moments buffer layout (the generic path)."""

    def __init__(self, obs_dim: int) -> None:
        self._inner = safe_envs.RunningObsNorm((obs_dim,))
        self.frozen = False

    def update(self, obs):
        self._inner.update(obs)

    def normalize(self, obs):
        return self._inner.normalize(obs)

    def state_dict(self):
        return self._inner.state_dict()

    def load_state_dict(self, state):
        return self._inner.load_state_dict(state)


def test_generic_normaliser_path_and_frozen_statistics():
    policy_net = make_actor_critic(11, 3, seed=0).policy_net
    batches, states = [], []
    for norm in (safe_envs.RunningObsNorm((11,)), OpaqueNorm(11)):
        collector = make_lean_collector(
            functools.partial(seeded_gym, HOPPER, 0),
            policy_net,
            frames_per_batch=50,
            seed=1,
            obs_norm=norm,
        )
        assert (collector._moments is None) == isinstance(norm, OpaqueNorm)
        torch.manual_seed(NOISE_SEED)
        batches.append(next(iter(collector)))
        states.append(collector.state_dict()["env_state_dict"])
        norm.frozen = True
        frozen_state = {k: v.clone() for k, v in norm.state_dict().items()}
        frozen_batch = collector.rollout()
        for key, value in norm.state_dict().items():
            assert torch.equal(value, frozen_state[key]), key
        assert frozen_batch["next", "observation"].abs().max() <= 5.0  # clipped: normalised
        collector.shutdown()
    for key in batches[0].keys(True, True):
        torch.testing.assert_close(batches[1][key], batches[0][key], rtol=1e-5, atol=1e-5)
    for key in states[0]:
        torch.testing.assert_close(states[1][key], states[0][key], rtol=1e-9, atol=1e-9)
    assert int(states[0]["count"]) > 50  # step observations plus reset observations


def test_state_dict_round_trip():
    policy_net = make_actor_critic(11, 3, seed=0).policy_net
    source = lean_hopper(policy_net, frames_per_batch=30, seed=0)
    next(iter(source))
    state = source.state_dict()
    assert list(state) == ["env_state_dict", "frames", "iter"]
    assert set(state["env_state_dict"]) == {"count", "mean", "sum_sq_dev", "std"}
    assert state["frames"] == 30 and state["iter"] == 0
    target = lean_hopper(policy_net, frames_per_batch=30)
    target.load_state_dict(state)
    restored = target.state_dict()
    assert restored["frames"] == 30 and restored["iter"] == 0
    for key, value in state["env_state_dict"].items():
        assert torch.equal(restored["env_state_dict"][key], value)
    with pytest.raises(KeyError, match="frames"):
        target.load_state_dict({"env_state_dict": {}, "iter": 0})
    plain = make_lean_collector(
        functools.partial(gymnasium.make, HOPPER), policy_net, frames_per_batch=10
    )
    with pytest.raises(KeyError, match="obs_norm"):
        plain.load_state_dict(state)
    for collector in (source, target, plain):
        collector.shutdown()


def test_total_frames_deterministic_actions_and_shutdown():
    policy_net = make_actor_critic(11, 3, seed=0).policy_net
    collector = LeanCollector(
        functools.partial(seeded_gym, HOPPER, 0),
        policy_net,
        frames_per_batch=20,
        total_frames=50,
        exploration_type=ExplorationType.DETERMINISTIC,
    )
    batches = list(collector)
    assert [b.numel() for b in batches] == [20, 20, 20]  # stops once 50 frames are reached
    for batch in batches:
        assert torch.equal(batch["action"], batch["loc"])
        expected = (-batch["scale"].log() - 0.5 * torch.log(torch.tensor(2 * torch.pi))).sum(-1)
        torch.testing.assert_close(batch["action_log_prob"], expected)
    collector.shutdown()
    collector.shutdown()  # idempotent
    with pytest.raises(RuntimeError, match="shut down"):
        collector.rollout()


def test_repr_and_bad_input():
    policy_net = make_actor_critic(11, 3, seed=0).policy_net
    env_fn = functools.partial(gymnasium.make, HOPPER)
    collector = LeanCollector(env_fn, policy_net, frames_per_batch=8, reset_at_each_iter=True)
    assert "frames_per_batch=8" in repr(collector) and "reset_at_each_iter=True" in repr(collector)
    collector.shutdown()
    with pytest.raises(TypeError, match="env_fn"):
        LeanCollector("Hopper", policy_net, frames_per_batch=8)
    with pytest.raises(TypeError, match="policy_net"):
        LeanCollector(env_fn, lambda obs: obs, frames_per_batch=8)
    with pytest.raises(ValueError, match="frames_per_batch"):
        LeanCollector(env_fn, policy_net, frames_per_batch=0)
    with pytest.raises(ValueError, match="total_frames"):
        LeanCollector(env_fn, policy_net, frames_per_batch=8, total_frames=0)
    with pytest.raises(TypeError, match="obs_norm"):
        LeanCollector(env_fn, policy_net, frames_per_batch=8, obs_norm=object())
    with pytest.raises(TypeError, match="exploration_type"):
        LeanCollector(env_fn, policy_net, frames_per_batch=8, exploration_type="random")
    with pytest.raises(TypeError, match="Gymnasium"):
        LeanCollector(lambda: object(), policy_net, frames_per_batch=8)
    with pytest.raises(ValueError, match="action_space"):
        LeanCollector(
            functools.partial(gymnasium.make, "CartPole-v1"), policy_net, frames_per_batch=8
        )
    with pytest.raises(ValueError, match="num_costs"):
        LeanCollector(env_fn, policy_net, frames_per_batch=8, num_costs=0)
    point_2 = functools.partial(gymnasium.make, POINT_2)
    point_net = make_actor_critic(1, 1, seed=0).policy_net
    with pytest.raises(ValueError, match=r"info\['costs'\] holds 2 value\(s\) .*num_costs=3"):
        LeanCollector(point_2, point_net, frames_per_batch=8, num_costs=3).rollout()
