"""A new constrained task: a Gymnasium env with info["cost"], registered and trained."""

import functools
import os

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import safe_envs
from gradmanip.algos import PPO
from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.episodes import EpisodeTracker
from gradmanip.rl.models import make_actor_critic
from gradmanip.rl.trainer import Trainer
from gradmanip.strategies import make_strategy

SMALL = os.environ.get("GRADMANIP_DOCS_SMALL") == "1"  # the test suite's small budget
EPOCHS = 3 if SMALL else 30


class HazardLineEnv(gymnasium.Env):
    """A point on a line must get close to a goal that lies beyond a hazard boundary.

    Action: a velocity in [-1, 1] (times ``max_speed``). Reward: ``-|x - goal|``. Cost: 1.0 for
    every step spent beyond ``boundary`` (strictly), reported in ``info["cost"]``. The best safe
    policy waits at the boundary; a reward-only policy sits on the goal and pays a cost each step.
    """

    metadata = {"render_modes": []}

    def __init__(self, goal: float = 1.5, boundary: float = 1.0, max_speed: float = 0.1) -> None:
        if not boundary < goal:
            raise ValueError(f"boundary must lie before goal, got {boundary=} and {goal=}")
        if max_speed <= 0:
            raise ValueError(f"max_speed must be > 0, got {max_speed!r}")
        self.goal, self.boundary, self.max_speed = float(goal), float(boundary), float(max_speed)
        reach = 1.0 + max_speed * 1000  # |x| stays below this within 1000 steps
        self.observation_space = spaces.Box(-reach, reach, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._x = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._x = float(self.np_random.uniform(-0.1, 0.1))
        return np.array([self._x], dtype=np.float32), {}

    def step(self, action):
        velocity = float(np.clip(np.asarray(action).reshape(-1)[0], -1.0, 1.0)) * self.max_speed
        self._x += velocity
        reward = -abs(self._x - self.goal)
        cost = 1.0 if self._x > self.boundary else 0.0
        obs = np.array([self._x], dtype=np.float32)
        return obs, reward, False, False, {"cost": cost}


# 1. Register the task: Gymnasium id, entry point, default cost limit (per episode) and episode
#    length. In a package, the entry point is a string: "my_package.hazard_line:HazardLineEnv".
safe_envs.register_task(
    "HazardLine-v0",
    HazardLineEnv,
    default_cost_limit=5.0,
    cost_limit_source="safe_envs",
    max_episode_steps=50,
)
env = gymnasium.make("HazardLine-v0")
check_env(env.unwrapped)  # Gymnasium's own API checks
print("registered:", "HazardLine-v0" in safe_envs.available_ids())
print("default cost limit:", safe_envs.default_cost_limit("HazardLine-v0"))

# 2. The TorchRL version carries ("next", "cost") next to ("next", "reward").
rollout = safe_envs.make_env("HazardLine-v0", seed=0).rollout(50)
print("rollout cost:", tuple(rollout["next", "cost"].shape), rollout["next", "cost"].dtype)

# 3. Train with the project's parts: PPO + PCRPO soft switching, driven by the Trainer.
torch.set_num_threads(1)
torch.manual_seed(0)
make_env = functools.partial(safe_envs.make_env, "HazardLine-v0", seed=0, normalize_obs=True)
nets = make_actor_critic(obs_dim=1, action_dim=1, seed=0)
cost_limit = safe_envs.default_cost_limit("HazardLine-v0")
strategy = make_strategy("soft_switch", cost_limit=cost_limit, upper_slack=1.0, lower_slack=-1.0)
trainer = Trainer(
    make_collector(
        make_env,
        GaussianPolicy(nets.policy_net),
        frames_per_batch=1000,
        seed=0,
        reset_each_epoch=True,
    ),
    PPO(nets, strategy, epochs=10, minibatch_size=100),
    nets,
    SafeAdvantages(nets.reward_critic, nets.cost_critic, gamma=0.99, lmbda=0.95),
    EpisodeTracker(carry_over=False),
    seed=0,
)


def report(metrics: dict[str, float]) -> None:
    print(
        f"epoch {metrics['epoch']:3.0f}  return {metrics['episode_return']:7.2f}  "
        f"cost {metrics['episode_cost']:5.2f} (limit {cost_limit:g})  "
        f"mode {metrics['strategy/mode']:.0f}"
    )


history = trainer.train(EPOCHS, callback=report)
trainer.collector.shutdown()
