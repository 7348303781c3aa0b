"""The shared training loop: metrics, callbacks, checkpoints, real tasks, several workers."""

import functools
import io
import math

import pytest
import torch

import safe_envs
from gradmanip.algos import PPO
from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, collector_env, find_transform, make_collector
from gradmanip.rl.episodes import EpisodeTracker
from gradmanip.rl.models import make_actor_critic
from gradmanip.rl.trainer import Trainer
from gradmanip.strategies import make_strategy

TOY = "SafetyPointVelocity-v0"


def build(task=TOY, frames=200, strategy="soft_switch", num_workers=1, seed=0, **env_kwargs):
    env = safe_envs.make_env(task)
    obs_dim = env.observation_spec["observation"].shape[-1]
    action_dim = env.action_spec.shape[-1]
    env.close()
    actor_critic = make_actor_critic(obs_dim, action_dim, seed=seed)
    collector = make_collector(
        functools.partial(safe_envs.make_env, task, seed=seed, **env_kwargs),
        GaussianPolicy(actor_critic.policy_net),
        frames_per_batch=frames,
        num_workers=num_workers,
        seed=seed,
    )
    algo = PPO(
        actor_critic,
        make_strategy(strategy, cost_limit=5.0),
        epochs=2,
        minibatch_size=50,
        target_kl=None,
        generator=torch.Generator().manual_seed(seed),
    )
    advantages = SafeAdvantages(actor_critic.reward_critic, actor_critic.cost_critic)
    return Trainer(collector, algo, actor_critic, advantages), collector


def test_epochs_report_episode_stats_losses_and_timings():
    trainer, collector = build()
    seen = []
    history = trainer.train(3, callback=seen.append)
    collector.shutdown()
    assert seen == history and len(history) == 3
    last = history[-1]
    assert last["epoch"] == 3 and last["frames"] == 600
    assert last["episodes"] == 2  # 100-step episodes, 200 steps per epoch
    assert math.isfinite(last["episode_return"]) and last["episode_length"] == 100
    for key in ("loss/reward", "loss/cost", "loss/value", "kl", "strategy/mode", "time/update"):
        assert math.isfinite(last[key]), key


def test_callback_returning_true_stops_training():
    trainer, collector = build()
    history = trainer.train(5, callback=lambda metrics: metrics["epoch"] >= 2)
    collector.shutdown()
    assert len(history) == 2 and trainer.epoch == 2


def test_checkpoint_restores_networks_optimizers_strategy_and_partial_episodes():
    trainer, collector = build(frames=130, strategy="lagrangian", normalize_obs=True)
    trainer.train(2)
    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    saved = find_transform(collector_env(collector), safe_envs.RunningObsNorm)
    collector.shutdown()
    buffer.seek(0)
    state = torch.load(buffer, weights_only=False)
    restored, restored_collector = build(
        frames=130, strategy="lagrangian", seed=7, normalize_obs=True
    )
    restored.load_state_dict(state)
    assert restored.epoch == 2 and restored.frames == 260
    for name in ("actor", "reward_critic", "cost_critic"):
        got = getattr(restored.actor_critic, name).state_dict()
        for key, value in state["networks"][name].items():
            torch.testing.assert_close(got[key], value)
    strategy_state = trainer.strategy.state_dict()
    assert len(strategy_state) > 0
    for key, value in restored.strategy.state_dict().items():
        torch.testing.assert_close(value, strategy_state[key])
    assert restored.episodes.state_dict()["carry"]["length"].tolist() == [60.0]  # 260 = 2x100+60
    assert restored.algo.updates_done == 2
    norm = find_transform(collector_env(restored_collector), safe_envs.RunningObsNorm)
    assert int(norm.count) == int(saved.count) > 0
    torch.testing.assert_close(norm.mean, saved.mean)
    restored.train(1)  # and it keeps going
    restored_collector.shutdown()


def test_real_mujoco_task_with_observation_normalisation():
    trainer, collector = build("SafetyHopperVelocity-v1", frames=128, normalize_obs=True)
    metrics = trainer.train(1)[0]
    collector.shutdown()
    assert metrics["frames"] == 128
    assert math.isfinite(metrics["loss/reward"]) and math.isfinite(metrics["loss/cost"])


def test_two_worker_processes_collect_and_follow_policy_updates():
    trainer, collector = build(frames=200, num_workers=2)
    history = trainer.train(1)
    assert history[-1]["frames"] == 200
    assert history[-1]["episodes"] == 2  # each worker finishes one 100-step episode per epoch
    last_layer = [m for m in trainer.actor_critic.policy_net.modules() if hasattr(m, "bias")][-1]
    with torch.no_grad():
        last_layer.weight.zero_()
        last_layer.bias.fill_(7.0)  # the policy's mean action is now 7
    collector.update_policy_weights_()
    batch = trainer.next_batch()
    collector.shutdown()
    assert batch.batch_size == torch.Size([2, 100])
    assert batch["loc"].eq(7.0).all()


def test_bad_arguments_fail_early():
    trainer, collector = build()
    collector.shutdown()
    with pytest.raises(TypeError, match="collector"):
        Trainer(object(), trainer.algo, trainer.actor_critic, trainer.advantages)
    with pytest.raises(TypeError, match="algo"):
        Trainer(trainer.collector, object(), trainer.actor_critic, trainer.advantages)
    with pytest.raises(ValueError, match="epochs"):
        trainer.train(-1)
    two_costs = make_actor_critic(1, 1, seed=0, num_costs=2)
    with pytest.raises(ValueError, match=r"EpisodeTracker\(num_constraints=2, \.\.\.\)"):
        Trainer(trainer.collector, trainer.algo, two_costs, trainer.advantages, EpisodeTracker())
    default = Trainer(trainer.collector, trainer.algo, two_costs, trainer.advantages)
    assert default.episodes.num_constraints == 2
    with pytest.raises(ValueError, match="num_workers"):
        make_collector(lambda: None, None, frames_per_batch=10, num_workers=0)
    with pytest.raises(ValueError, match="multiple of num_workers"):
        make_collector(lambda: None, None, frames_per_batch=11, num_workers=2)
