"""Rollout collection with TorchRL collectors.

:class:`GaussianPolicy` is the collection-time policy: the actor's plain ``policy_net`` plus
sampling and log-probability in tensor math (no distribution object per step). It writes the
same keys as :class:`gradmanip.rl.models.make_actor` (``"loc"``, ``"scale"``, ``"action"``,
``"action_log_prob"``) and shares the actor's parameters, so updates to the actor are seen at
once by a single-process collector; multi-process collectors receive them through
``collector.update_policy_weights_()`` (the trainer calls it every epoch).

Under a deterministic exploration type (``set_exploration_type(ExplorationType.DETERMINISTIC)``,
``MODE`` or ``MEAN``: evaluation) the action is the mean.

Observation normalisation lives in the environment (``safe_envs.make_env(normalize_obs=True)``
adds a running normaliser; :func:`find_transform` reaches it). With ``num_workers > 1`` every
worker process keeps its own statistics (saved per worker by ``collector.state_dict()``); the
end-of-run evaluation pools them (:func:`gradmanip.experiment.collection.pooled_obs_statistics`)
and loads them, frozen, into a fresh environment
(:func:`gradmanip.experiment.evaluate.final_evaluation`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tensordict.nn import TensorDictModule
from torch import Tensor, nn
from torchrl.collectors import BaseCollector, Collector, MultiSyncCollector
from torchrl.envs import Compose, EnvBase, Transform, TransformedEnv
from torchrl.envs.utils import exploration_type

from gradmanip.gaussian import MEAN_ACTION_EXPLORATION, standardized_log_prob


class GaussianSampler(nn.Module):
    """``observation -> (loc, scale, action, action_log_prob)`` around a ``policy_net``."""

    def __init__(self, policy_net: nn.Module) -> None:
        super().__init__()
        self.policy_net = policy_net

    def forward(self, observation: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        loc, scale = self.policy_net(observation)
        if exploration_type() in MEAN_ACTION_EXPLORATION:
            action = loc
            noise = torch.zeros_like(loc)
        else:
            noise = torch.randn_like(loc)
            action = loc + scale * noise
        return loc, scale, action, standardized_log_prob(noise, scale)


def GaussianPolicy(policy_net: nn.Module) -> TensorDictModule:  # noqa: N802  (a factory)
    """TensorDict policy for collectors: ``"observation" -> "loc", "scale", "action",
    "action_log_prob"`` (log-prob summed over action dims, shape ``[...]``)."""
    return TensorDictModule(
        GaussianSampler(policy_net),
        in_keys=["observation"],
        out_keys=["loc", "scale", "action", "action_log_prob"],
    )


def make_collector(
    env_fn: Callable[[], EnvBase],
    policy: TensorDictModule,
    *,
    frames_per_batch: int,
    total_frames: int = -1,
    num_workers: int = 1,
    seed: int | None = None,
    reset_each_epoch: bool = False,
) -> BaseCollector:
    """A TorchRL collector yielding batches of ``frames_per_batch`` steps, time last.

    Args:
        env_fn: builds one (possibly batched) environment, e.g.
            ``functools.partial(safe_envs.make_env, "SafetyHopperVelocity-v1")``.
        policy: the collection policy (see :func:`GaussianPolicy`).
        frames_per_batch: environment steps per batch (all workers together).
        total_frames: stop after this many steps (``-1``: never).
        num_workers: ``1`` steps in this process (:class:`~torchrl.collectors.Collector`);
            ``> 1`` runs that many processes with :class:`~torchrl.collectors.MultiSyncCollector`
            (each builds its own env; ``frames_per_batch`` must divide evenly).
        seed: seeds the environments (worker ``i`` gets ``seed + i``). The collector resets its
            environments once when it is built, before this seed applies: for repeatable runs
            let ``env_fn`` seed them too (e.g. ``make_env(..., seed=seed)``), so observation
            statistics start from the same first observation.
        reset_each_epoch: start every batch with fresh episodes (partial episodes are cut as
            truncated). With :class:`gradmanip.rl.trainer.Trainer`'s ``seed`` this makes every epoch
            a function of (seed, epoch) and the run exactly resumable from a checkpoint.
    """
    if not callable(env_fn):
        raise TypeError(f"env_fn must be a callable returning an EnvBase, got {type(env_fn)}")
    if isinstance(frames_per_batch, bool) or int(frames_per_batch) < 1:
        raise ValueError(f"frames_per_batch must be a positive integer, got {frames_per_batch!r}")
    if isinstance(num_workers, bool) or int(num_workers) < 1:
        raise ValueError(f"num_workers must be a positive integer, got {num_workers!r}")
    if num_workers > 1 and frames_per_batch % num_workers:
        raise ValueError(
            f"frames_per_batch ({frames_per_batch}) must be a multiple of num_workers "
            f"({num_workers}) so every worker collects the same number of steps"
        )
    if num_workers == 1:
        collector = Collector(
            env_fn,
            policy,
            frames_per_batch=frames_per_batch,
            total_frames=total_frames,
            reset_at_each_iter=reset_each_epoch,
            auto_register_policy_transforms=False,
            trust_policy=True,
            track_traj_ids=False,
        )
    else:
        collector = MultiSyncCollector(
            [env_fn] * num_workers,
            policy,
            frames_per_batch=frames_per_batch,
            total_frames=total_frames,
            cat_results="stack",
            reset_at_each_iter=reset_each_epoch,
            auto_register_policy_transforms=False,
            trust_policy=True,
        )
    if seed is not None:
        collector.set_seed(int(seed))
    return collector


def find_transform(env: EnvBase, transform_type: type[Transform]) -> Transform | None:
    """The first transform of ``transform_type`` in ``env`` (e.g. the observation normaliser,
    to copy its statistics into an evaluation env and freeze them), or ``None``."""
    while isinstance(env, TransformedEnv):
        transform = env.transform
        parts = list(transform) if isinstance(transform, Compose) else [transform]
        for part in parts:
            if isinstance(part, transform_type):
                return part
        env = env.base_env
    return None


def collector_env(collector: BaseCollector) -> EnvBase:
    """The environment a single-process collector steps (for its transforms' statistics)."""
    env = getattr(collector, "env", None)
    if not isinstance(env, EnvBase):
        raise TypeError(
            f"{type(collector).__name__} has no local environment; multi-process collectors keep "
            "one per worker (read their statistics through collector.state_dict())"
        )
    return env
