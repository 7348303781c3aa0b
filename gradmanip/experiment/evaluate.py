"""Evaluation episodes with the deterministic (mean) policy, optionally recorded as a GIF.

Evaluation uses a fresh copy of the task whose observation normaliser is loaded from training
and frozen, so the policy sees observations scaled exactly as in training.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.envs import EnvBase
from torchrl.envs.utils import ExplorationType, set_exploration_type

import safe_envs
from gradmanip.rl.collect import GaussianPolicy
from safe_envs.obs_norm import RunningObsNorm


def evaluate(
    policy: TensorDictModule,
    make_env: Callable[[], EnvBase],
    episodes: int,
    max_steps: int,
    obs_norm_state: Mapping | None = None,
) -> dict[str, float]:
    """Mean and std of return, cost and length over ``episodes`` deterministic episodes.

    With K > 1 constraints ``eval/cost`` is the total cost and ``eval/cost_k`` (with
    ``eval/cost_k_std``) constraint k's (see :mod:`gradmanip.rl.metric_names`)."""
    env = make_env()
    transform = getattr(env, "transform", None)
    if obs_norm_state is not None:
        transform.load_state_dict(dict(obs_norm_state))
    if transform is not None and hasattr(transform, "freeze"):
        transform.freeze()
    returns, costs, lengths = [], [], []
    with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
        for _ in range(episodes):
            rollout = env.rollout(max_steps, policy, break_when_any_done=True)
            returns.append(rollout["next", "reward"].sum().item())
            costs.append(rollout["next", "cost"].reshape(rollout.numel(), -1).sum(0).tolist())
            lengths.append(rollout.numel())
    env.close()
    per_constraint = np.asarray(costs, dtype=np.float64)  # [episodes, K]
    series = {"return": returns, "cost": per_constraint.sum(1), "length": lengths}
    if per_constraint.shape[1] > 1:
        series |= {f"cost_{k}": column for k, column in enumerate(per_constraint.T)}
    out = {}
    for name, values in series.items():
        out[f"eval/{name}"] = float(np.mean(values))
        out[f"eval/{name}_std"] = float(np.std(values))
    return out


def record_gif(
    policy: Callable[[np.ndarray], np.ndarray],
    make_gym_env: Callable[..., object],
    path: str | os.PathLike,
    max_steps: int = 1000,
    seed: int = 0,
    fps: int = 30,
) -> Path | None:
    """Render one deterministic episode to an animated GIF; returns ``None`` (and says why)
    where MuJoCo cannot render (headless machines need ``MUJOCO_GL=egl`` or ``osmesa``)."""
    from PIL import Image

    try:
        env = make_gym_env(render_mode="rgb_array")
        obs, _ = env.reset(seed=seed)
        frames = [env.render()]
    except Exception as err:  # noqa: BLE001  (any GL failure means: no video here)
        print(
            f"video skipped: rendering failed ({type(err).__name__}: {err}); "
            "on a headless machine set MUJOCO_GL=egl or MUJOCO_GL=osmesa"
        )
        return None
    for _ in range(max_steps):
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        frames.append(env.render())
        if terminated or truncated:
            break
    env.close()
    images = [Image.fromarray(f) for f in frames[::2]]
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(2000 / fps), loop=0)
    return path


def numpy_policy(
    policy_net: torch.nn.Module, normalize: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """Deterministic ``obs -> action`` on NumPy arrays (for rendering a Gymnasium env)."""

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32)
        if normalize is not None:
            x = normalize(x)
        loc, _ = policy_net(x)
        return loc.numpy()

    return act


def final_evaluation(
    policy_net: nn.Module,
    env_id: str,
    task_kwargs: Mapping[str, Any],
    *,
    episodes: int,
    seed: int,
    obs_norm_state: Mapping | None,
    obs_clip: float,
    video_path: Path | None = None,
) -> dict[str, Any]:
    """The run's evaluation (at its end, and with the recipes' ``eval_every`` during training):
    ``episodes`` deterministic episodes on a fresh copy of the task (seeded ``seed``,
    observations normalised with the training statistics ``obs_norm_state``), and, with
    ``video_path``, one episode recorded as a GIF."""
    episode_steps = (
        task_kwargs.get("max_episode_steps") or safe_envs.task_entry(env_id).max_episode_steps
    )
    summary: dict[str, Any] = {}
    if episodes:
        make_env = functools.partial(
            safe_envs.make_env,
            env_id,
            normalize_obs=obs_norm_state is not None,
            obs_clip=obs_clip,
            seed=seed,
            **task_kwargs,
        )
        policy = GaussianPolicy(policy_net)
        summary.update(evaluate(policy, make_env, episodes, episode_steps, obs_norm_state))
    if video_path is not None:
        normalize = None
        if obs_norm_state is not None:
            normalize = RunningObsNorm(tuple(obs_norm_state["mean"].shape), clip=obs_clip)
            normalize.load_state_dict(dict(obs_norm_state))
        gif = record_gif(
            numpy_policy(policy_net, normalize.normalize if normalize else None),
            functools.partial(gymnasium.make, env_id, **task_kwargs),
            video_path,
            max_steps=episode_steps,
        )
        if gif is not None:
            summary["video"] = str(gif)
    return summary
