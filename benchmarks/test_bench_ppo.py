"""PPO speed: the update path with a strategy vs reward-only, and end-to-end throughput.

1. One PPO pass (2,000 samples, minibatch 64) with soft switching vs reward-only on the same
   batch: the strategy's overhead (target ratio <= 1.5, in ``extra_info``).
2. PPO-Lagrangian on SafetyHopperVelocity-v1 with the common configuration (64x64 MLPs, 2,000
   steps per epoch, 40 update iterations, minibatch 64, one env, KL early stopping off):
   environment steps per second including updates (peer: ~190; target >= 1,000), with the time
   split between collection, advantages and updates. Run three times, side by side: the generic
   path (TorchRL's collector, the generic PPO step), with the lean PPO step, and with both the
   lean step and :class:`gradmanip.fast.lean_collector.LeanCollector` (the default).

With ``--benchmark-disable`` the work is scaled down so the suite runs in seconds.
"""

import functools
import math
import time

import gymnasium
import pytest
import torch
from tensordict import TensorDict

import safe_envs
from gradmanip.algos import PPO
from gradmanip.fast.lean_collector import LeanCollector, make_lean_collector
from gradmanip.gaussian import gaussian_log_prob
from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.models import make_actor_critic
from gradmanip.rl.trainer import Trainer
from gradmanip.strategies import make_strategy

HOPPER = "SafetyHopperVelocity-v1"


def synthetic_batch(n: int, obs_dim: int = 11, action_dim: int = 3) -> TensorDict:
    g = torch.Generator().manual_seed(0)
    loc = 0.1 * torch.randn(n, action_dim, generator=g)
    scale = torch.full((n, action_dim), 0.6)
    action = loc + scale * torch.randn(n, action_dim, generator=g)
    return TensorDict(
        {
            "observation": torch.randn(n, obs_dim, generator=g),
            "action": action,
            "loc": loc,
            "scale": scale,
            "action_log_prob": gaussian_log_prob(action, loc, scale),
            "advantage": torch.randn(n, 1, generator=g),
            "cost_advantage": torch.randn(n, 1, generator=g),
            "value_target": torch.randn(n, 1, generator=g),
            "cost_value_target": torch.randn(n, 1, generator=g),
        },
        [n],
    )


def one_pass(strategy_name: str, settings: dict, batch: TensorDict):
    algo = PPO(
        make_actor_critic(11, 3, seed=0),
        make_strategy(strategy_name, **settings),
        epochs=1,
        minibatch_size=64,
        target_kl=None,
        generator=torch.Generator().manual_seed(0),
    )
    return lambda: algo.update(batch, torch.tensor([25.0]))


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_update_cost_soft_switch_vs_reward_only(benchmark):
    quick = benchmark.disabled
    batch = synthetic_batch(500 if quick else 2000)
    soft = one_pass(
        "soft_switch", {"cost_limit": 25.0, "upper_slack": 9.0, "lower_slack": -9.0}, batch
    )
    plain = one_pass("reward_only", {}, batch)
    soft(), plain()  # warm-up
    repeats = 1 if quick else 7
    ratio = best_time(soft, repeats) / best_time(plain, repeats)
    benchmark.extra_info["soft_switch_over_reward_only"] = round(ratio, 3)
    benchmark.extra_info["target_ratio"] = 1.5
    metrics = benchmark(soft)
    assert metrics["minibatch_steps"] == math.ceil(batch.numel() / 64)
    assert metrics["strategy/mode"] == 0.0  # J_c_hat = b: inside the band, both objectives
    assert all(math.isfinite(v) for k, v in metrics.items() if k.startswith("loss"))


def seeded_hopper(seed: int = 0) -> gymnasium.Env:
    """The Gymnasium task seeded at construction, as ``safe_envs.make_env(seed=...)`` does."""
    env = gymnasium.make(HOPPER)
    env.reset(seed=seed)
    return env


def hopper_trainer(frames: int, iterations: int, backend: str = "torchrl", lean: bool = True):
    actor_critic = make_actor_critic(11, 3, seed=0)
    if backend == "lean":
        collector = make_lean_collector(
            seeded_hopper,
            actor_critic.policy_net,
            frames_per_batch=frames,
            seed=0,
            obs_norm=safe_envs.RunningObsNorm((11,)),
        )
    else:
        collector = make_collector(
            functools.partial(safe_envs.make_env, HOPPER, seed=0, normalize_obs=True),
            GaussianPolicy(actor_critic.policy_net),
            frames_per_batch=frames,
            seed=0,
        )
    algo = PPO(
        actor_critic,
        make_strategy("lagrangian", cost_limit=25.0),
        lr=3e-4,
        epochs=iterations,
        minibatch_size=64,
        target_kl=None,
        lean=lean,
        generator=torch.Generator().manual_seed(0),
    )
    advantages = SafeAdvantages(actor_critic.reward_critic, actor_critic.cost_critic)
    return Trainer(collector, algo, actor_critic, advantages), collector


@pytest.mark.parametrize(
    ("backend", "lean"), [("torchrl", False), ("torchrl", True), ("lean", True)]
)
def test_end_to_end_ppo_lagrangian_hopper(benchmark, backend, lean):
    """The generic path (TorchRL collector, generic PPO step), then each specialisation added."""
    torch.set_num_threads(1)
    quick = benchmark.disabled
    frames, iterations = (256, 2) if quick else (2000, 40)
    trainer, collector = hopper_trainer(frames, iterations, backend, lean)
    assert isinstance(collector, LeanCollector) == (backend == "lean")
    trainer.run_epoch()  # warm-up (first reset, allocations)
    epochs = []
    cpu_start = time.process_time()
    benchmark.pedantic(
        lambda: epochs.append(trainer.run_epoch()), rounds=1 if quick else 3, iterations=1
    )
    cpu_seconds = time.process_time() - cpu_start
    stats = collector.state_dict()["env_state_dict"]
    assert int(stats["count"]) >= frames * (1 + len(epochs))  # every step observation seen
    collector.shutdown()
    total = sum(m["time/epoch"] for m in epochs)
    split = {
        part: sum(m[f"time/{part}"] for m in epochs) / total
        for part in ("collect", "advantages", "update")
    }
    benchmark.extra_info["collector"] = backend
    benchmark.extra_info["ppo_step"] = "lean" if lean else "generic"
    benchmark.extra_info["env_steps_per_second"] = round(frames * len(epochs) / total, 1)
    # CPU time of this process (collection is in-process): robust to a busy shared machine
    benchmark.extra_info["env_steps_per_cpu_second"] = round(frames * len(epochs) / cpu_seconds, 1)
    benchmark.extra_info["peer_steps_per_second"] = 190
    benchmark.extra_info["target_steps_per_second"] = 1000
    benchmark.extra_info["time_split"] = {k: round(v, 3) for k, v in split.items()}
    benchmark.extra_info["seconds_per_epoch"] = {
        part: round(sum(m[f"time/{part}"] for m in epochs) / len(epochs), 3)
        for part in ("collect", "advantages", "update", "epoch")
    }
    last = epochs[-1]
    assert last["minibatch_steps"] == iterations * math.ceil(frames / 64)
    assert math.isfinite(last["loss/reward"]) and math.isfinite(last["loss/cost_value"])
    assert last["frames"] == frames * (1 + len(epochs))
