"""Speed of the safe_envs tasks.

* Velocity tasks vs their raw Gymnasium v4 base, stepped in the same run on identical
  trajectories (same seed, same actions, interleaved blocks): ``ratio`` is the median over
  block pairs of raw time / safe time (target >= 0.97). On a shared machine that ratio carries
  a few percent of noise, so ``isolated_ratio`` also times the safety layer alone (the wrapper
  on a replayed step) against the raw step time.
* The TorchRL entry point (``safe_envs.make_env``) vs a plain Gymnasium loop, single and
  batched (``SerialEnv``).

Figures go to ``benchmark.extra_info`` and stdout; timings are informative, not asserted. Each
benchmark also asserts that what it ran is correct. With ``--benchmark-disable`` every case runs
a few steps only.
"""

from __future__ import annotations

import time
import warnings

import gymnasium
import numpy as np
import pytest
import torch

import safe_envs
from safe_envs.velocity import VelocityCost

VELOCITY = {
    "SafetyHopperVelocity-v1": "Hopper-v4",
    "SafetyHalfCheetahVelocity-v1": "HalfCheetah-v4",
    "SafetyWalker2dVelocity-v1": "Walker2d-v4",
    "SafetySwimmerVelocity-v1": "Swimmer-v4",
    "SafetyAntVelocity-v1": "Ant-v4",
    "SafetyHumanoidVelocity-v1": "Humanoid-v4",
}


def steps_and_rounds(benchmark) -> tuple[int, int]:
    """(steps per block, interleaved block pairs)."""
    return (20, 1) if benchmark.disabled else (250, 21)


def make_quiet(env_id: str) -> gymnasium.Env:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return gymnasium.make(env_id)


def timed_block(env: gymnasium.Env, actions: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Seconds for ``len(actions)`` steps from ``reset(seed=0)``, final obs, summed cost."""
    obs, _ = env.reset(seed=0)
    cost = 0.0
    start = time.perf_counter()
    for action in actions:
        obs, _, terminated, truncated, info = env.step(action)
        cost += info.get("cost", 0.0)
        if terminated or truncated:
            obs, _ = env.reset()
    return time.perf_counter() - start, obs, cost


class ReplayStep(gymnasium.Env):
    """Returns one recorded step result, to time the safety layer on its own."""

    def __init__(self, env: gymnasium.Env, result: tuple) -> None:
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self.result = result

    def step(self, action):
        return self.result


def isolated_layer_seconds(env_id: str, raw: gymnasium.Env, action: np.ndarray, n: int) -> float:
    """Seconds per step spent in the safety layer alone (wrapper on a replayed step)."""
    raw.reset(seed=0)
    replay = ReplayStep(raw, raw.step(action))
    layer = gymnasium.make(env_id).env
    while not isinstance(layer, VelocityCost):
        layer = layer.env
    wrapped = VelocityCost(replay, layer.velocity_threshold, layer.planar)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            replay.step(action)
        bare = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(n):
            wrapped.step(action)
        best = min(best, (time.perf_counter() - start - bare) / n)
    return max(best, 0.0)


def paired_rates(env_id: str, steps: int, rounds: int) -> dict[str, float]:
    raw, safe = make_quiet(VELOCITY[env_id]), gymnasium.make(env_id)
    rng = np.random.default_rng(0)
    space = raw.action_space
    actions = rng.uniform(space.low, space.high, size=(steps, *space.shape)).astype(space.dtype)
    raw_times, safe_times = [], []
    for round_index in range(rounds):
        pair = [(raw, raw_times), (safe, safe_times)]
        for env, times in pair if round_index % 2 == 0 else pair[::-1]:
            seconds, obs, cost = timed_block(env, actions)
            times.append(seconds)
            if env is raw:
                raw_obs = obs
            else:
                safe_obs, safe_cost = obs, cost
    np.testing.assert_array_equal(raw_obs, safe_obs)
    assert 0.0 <= safe_cost <= steps
    raw_step = float(np.median(raw_times)) / steps
    layer = isolated_layer_seconds(env_id, raw, actions[0], 200 if rounds == 1 else 20000)
    raw.close()
    safe.close()
    return {
        "raw_steps_per_s": 1.0 / raw_step,
        "safe_steps_per_s": steps / float(np.median(safe_times)),
        "ratio": float(np.median(np.array(raw_times) / np.array(safe_times))),
        "layer_us_per_step": layer * 1e6,
        "isolated_ratio": raw_step / (raw_step + layer),
        "target_ratio": 0.97,
    }


@pytest.mark.parametrize("env_id", list(VELOCITY))
def test_velocity_task_vs_raw_base(benchmark, env_id):
    torch.set_num_threads(1)
    steps, rounds = steps_and_rounds(benchmark)
    result = benchmark.pedantic(paired_rates, args=(env_id, steps, rounds), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(
        f"\n{env_id}: raw {result['raw_steps_per_s']:.0f} steps/s, with safety layer "
        f"{result['safe_steps_per_s']:.0f} steps/s, paired median ratio {result['ratio']:.3f}; "
        f"layer alone {result['layer_us_per_step']:.2f} us/step -> ratio "
        f"{result['isolated_ratio']:.4f} (target >= 0.97)"
    )


def gym_loop_rate(env_id: str, num_envs: int, steps_per_env: int) -> float:
    envs = [gymnasium.make(env_id) for _ in range(num_envs)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
        env.action_space.seed(i)
    start = time.perf_counter()
    for _ in range(steps_per_env):
        for env in envs:
            *_, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
    seconds = time.perf_counter() - start
    for env in envs:
        env.close()
    return num_envs * steps_per_env / seconds


def torchrl_rate(env_id: str, num_envs: int, steps_per_env: int) -> float:
    env = safe_envs.make_env(env_id, num_envs=num_envs, seed=0)
    env.rollout(2)
    start = time.perf_counter()
    td = env.rollout(steps_per_env, break_when_any_done=False)
    seconds = time.perf_counter() - start
    batch = () if num_envs == 1 else (num_envs,)
    assert td["next", "cost"].shape == td["next", "reward"].shape == (*batch, steps_per_env, 1)
    assert td["next", "cost"].dtype == torch.float32 and (td["next", "cost"] >= 0).all()
    env.close()
    return num_envs * steps_per_env / seconds


@pytest.mark.parametrize("num_envs", [1, 4])
def test_torchrl_entry_point_vs_gymnasium_loop(benchmark, num_envs):
    torch.set_num_threads(1)
    env_id = "SafetyHopperVelocity-v1"
    steps = 10 if benchmark.disabled else 2000 // num_envs

    def both() -> dict[str, float]:
        gym_rate = gym_loop_rate(env_id, num_envs, steps)
        rl_rate = torchrl_rate(env_id, num_envs, steps)
        return {"gym_steps_per_s": gym_rate, "torchrl_steps_per_s": rl_rate}

    result = benchmark.pedantic(both, rounds=1, iterations=1)
    result["ratio"] = result["torchrl_steps_per_s"] / result["gym_steps_per_s"]
    benchmark.extra_info.update(result)
    print(
        f"\n{env_id} x{num_envs}: gymnasium loop {result['gym_steps_per_s']:.0f} steps/s, "
        f"make_env rollout {result['torchrl_steps_per_s']:.0f} steps/s, "
        f"ratio {result['ratio']:.3f}"
    )
