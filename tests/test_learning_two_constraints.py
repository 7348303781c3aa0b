"""Learning with two constraints that bind in different phases (SafetyPointVelocityEffort-v0).

The toy point mass with a speed limit and an effort budget (limit 10 per 100-step episode each):
the initial action noise breaks the effort budget at once, the speed limit only once the policy
has learnt to push forward. Soft switching (PCRPO, one band per constraint) ends within both
limits with a reward far above a random policy's (about 0); reward-only PPO breaks both. Fixed
seed; about 15 seconds of CPU.
"""

import pytest
from toy_learning import final, toy_ppo, train_on_toy_task

import safe_envs
from gradmanip.strategies import make_strategy

TASK = "SafetyPointVelocityEffort-v0"
LIMITS = list(safe_envs.default_cost_limit(TASK))
TARGETS = [0.8 * limit for limit in LIMITS]  # the safety margin of tests/test_learning.py
EPOCHS = 20
STRATEGIES = {
    "reward_only": {},
    "soft_switch": {"cost_limit": TARGETS, "upper_slack": 0.0, "lower_slack": -3.0},
}

pytestmark = pytest.mark.slow


def train(name: str) -> list[dict[str, float]]:
    # K = 2: one cost critic output and one episode cost per constraint
    return train_on_toy_task(TASK, toy_ppo(make_strategy(name, **STRATEGIES[name])), EPOCHS)


def test_soft_switching_ends_within_both_limits():
    history = train("soft_switch")
    speed = [m["episode_cost_0"] for m in history]
    effort = [m["episode_cost_1"] for m in history]
    # the constraints bind in different phases: effort at the start, speed later on
    assert effort[0] > LIMITS[1] and speed[0] < TARGETS[0]
    assert max(speed[EPOCHS // 2 :]) > LIMITS[0]
    assert history[0]["strategy/mode"] == 2.0  # cost only: the effort is above its band
    for k, limit in enumerate(LIMITS):
        assert final(history, f"episode_cost_{k}") <= limit, k
    assert all(
        m["episode_cost"] == pytest.approx(m["episode_cost_0"] + m["episode_cost_1"])
        for m in history
    )
    assert final(history, "episode_return") > 15.0  # a random policy: about 0


def test_reward_only_breaks_both_limits():
    history = train("reward_only")
    for k, limit in enumerate(LIMITS):
        assert final(history, f"episode_cost_{k}") > 3 * limit, k
    assert history[-1]["strategy/mode"] == 1.0
