"""The parts of an off-policy run (``algo.kind: off_policy``, e.g. ``algo=sac``).

From the recipe's configuration: the task (one Gymnasium environment stepped in this process,
raw observations), the SAC networks sized by the task's spaces, the base algorithm with the
chosen strategy, the replay buffer and the
:class:`~gradmanip.rl.off_policy_trainer.OffPolicyTrainer`.
The returned namespace has the fields the recipe reads for on-policy runs too (``strategy``,
``trainer``, ``collector`` to shut down, ``policy_net`` for the final evaluation).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import gymnasium
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import safe_envs
from gradmanip.rl.off_policy_trainer import OffPolicyTrainer
from gradmanip.rl.replay import make_replay_buffer
from gradmanip.rl.sac_models import ActionHead, SACNetworks, make_sac_networks

OFF_POLICY = "off_policy"


def is_off_policy(cfg: DictConfig) -> bool:
    """Whether ``cfg.algo`` is an off-policy base (``algo.kind``; on-policy when absent)."""
    return OmegaConf.select(cfg, "algo.kind", default="on_policy") == OFF_POLICY


def off_policy_algo(cfg: DictConfig, strategy: Any, networks: SACNetworks | None = None) -> Any:
    """The base of ``cfg.algo.base`` on ``networks`` (tiny ones when none are given: a check)."""
    networks = networks or make_sac_networks(1, 1, cfg.hidden)
    constraints = safe_envs.num_costs(cfg.env.id)
    return instantiate(cfg.algo.base)(networks, strategy, num_constraints=constraints)


def build_off_policy(cfg: DictConfig, strategy: Any) -> SimpleNamespace:
    """Task, networks, base algorithm, replay buffer and the off-policy trainer."""
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    task_kwargs = OmegaConf.to_container(cfg.env.kwargs)
    make_env = functools.partial(gymnasium.make, cfg.env.id, **task_kwargs)
    probe = make_env()
    space = probe.action_space
    networks = make_sac_networks(
        probe.observation_space.shape[-1],
        space.shape[-1],
        cfg.hidden,
        space.low.tolist(),
        space.high.tolist(),
        seed=cfg.seed,
    )
    probe.close()
    algo = off_policy_algo(cfg, strategy, networks)
    trainer = OffPolicyTrainer(
        make_env,
        algo,
        networks.actor,
        make_replay_buffer(cfg.algo.buffer_size, cfg.algo.batch_size, cfg.algo.sampler),
        steps_per_epoch=cfg.steps_per_epoch,
        warmup_steps=cfg.algo.warmup_steps,
        updates_per_step=cfg.algo.updates_per_step,
        cost_window=cfg.algo.cost_window,
        num_constraints=algo.num_constraints,
        seed=cfg.seed,
    )
    return SimpleNamespace(
        nets=networks,
        strategy=strategy,
        collector=trainer,
        trainer=trainer,
        task_kwargs=task_kwargs,
        policy_net=ActionHead(networks.actor),
    )
