"""Safe RL with a gradient-manipulation strategy on a base algorithm (default: PPO + PCRPO).

    python recipes/ppo_softswitch.py                                   # the main job
    python recipes/ppo_softswitch.py env=SafetyWalker2d-v4 strategy=lagrangian algo=trpo seed=3
    python recipes/ppo_softswitch.py algo=sac strategy=lagrangian     # SAC-Lagrangian
    python recipes/ppo_softswitch.py resume=true                       # continue after a stop
    python recipes/ppo_softswitch.py -m seed=0,1,2 strategy=soft_switch,lagrangian   # a sweep

Each epoch: collect -> episode statistics -> reward and cost advantages -> strategy state ->
per-objective gradients combined by the strategy -> (every ``eval_every`` epochs: deterministic
evaluation episodes) -> log, checkpoint. With ``algo=sac`` an epoch
is N environment steps, each stored in a replay buffer and followed by SAC updates whose
per-objective actor gradients the strategy combines. The run directory receives
``metrics.csv``, ``run.json``, ``checkpoints/last.pt``, ``curves.png`` and ``summary.json``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import safe_envs
from gradmanip.experiment.collection import (
    make_run_collector,
    pooled_obs_statistics,
    task_sizes,
)
from gradmanip.experiment.config_checks import check_run_config, check_run_dir, run_dir_field
from gradmanip.experiment.evaluate import final_evaluation
from gradmanip.experiment.exit_status import exit_with_status
from gradmanip.experiment.off_policy_run import build_off_policy, is_off_policy, off_policy_algo
from gradmanip.experiment.resolvers import register_resolvers
from gradmanip.experiment.stop_signals import RunStopped
from gradmanip.experiment.training_run import TrainingRun
from gradmanip.reporting import plot_run, read_metrics
from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.episodes import EpisodeTracker
from gradmanip.rl.models import make_actor_critic
from gradmanip.rl.trainer import Trainer
from gradmanip.strategies import DelayedSafety


def train(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """Run (or resume) one training run in ``run_dir``; returns the final summary.

    Raises ConfigError (before any work) for a bad setting and RunStopped after the checkpoint
    of a run stopped by SIGINT/SIGTERM.
    """
    check_run_config(cfg, lambda: build_strategy(cfg), lambda s: build_algo(cfg, s))
    check_run_dir(run_dir, run_dir_field())
    run = TrainingRun(
        run_dir,
        cfg.total_steps,
        resume=cfg.resume,
        checkpoint_every=cfg.checkpoint_every,
        backends=cfg.logger.backends,
        wandb_project=cfg.logger.wandb_project,
        progress=cfg.progress,
    )
    if run.finished:
        print(f"{run_dir} holds a finished run (summary.json); nothing to resume")
        return run.summary()
    parts = build(cfg)
    run.start(parts.trainer, describe(cfg, parts))
    try:
        train_epochs(parts.trainer, run, lambda: evaluation(cfg, parts), cfg.eval_every)
    except RunStopped:
        parts.collector.shutdown()
        raise
    return finish(cfg, parts, run)


def build_strategy(cfg: DictConfig):
    """The strategy of ``cfg.strategy``, after ``safety_start_epoch`` reward-only epochs."""
    strategy = instantiate(cfg.strategy)
    if cfg.safety_start_epoch:
        return DelayedSafety(strategy, cfg.safety_start_epoch)
    return strategy


def build_algo(cfg: DictConfig, strategy, actor_critic=None):
    """The base algorithm of ``cfg.algo`` (on tiny networks when none are given: a check)."""
    if is_off_policy(cfg):
        return off_policy_algo(cfg, strategy, actor_critic)
    actor_critic = actor_critic or make_actor_critic(
        1, 1, cfg.hidden, num_costs=safe_envs.num_costs(cfg.env.id)
    )
    return instantiate(cfg.algo.base)(actor_critic, strategy)


def build(cfg: DictConfig) -> SimpleNamespace:
    """The run's parts: off-policy ones (replay buffer, updates per step) for ``algo=sac``,
    on-policy ones otherwise."""
    if is_off_policy(cfg):
        return build_off_policy(cfg, build_strategy(cfg))
    return build_on_policy(cfg)


def build_on_policy(cfg: DictConfig) -> SimpleNamespace:
    """Task, networks, strategy, base algorithm, advantages, collection and the trainer."""
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    task_kwargs = OmegaConf.to_container(cfg.env.kwargs)
    obs_dim, action_dim = task_sizes(cfg.env.id, task_kwargs)
    num_costs = safe_envs.num_costs(cfg.env.id)  # K: one cost critic output per constraint
    nets = make_actor_critic(
        obs_dim, action_dim, cfg.hidden, cfg.init_log_std, seed=cfg.seed, num_costs=num_costs
    )
    strategy = build_strategy(cfg)
    algo = build_algo(cfg, strategy, nets)
    advantages = SafeAdvantages(
        nets.reward_critic,
        nets.cost_critic,
        gamma=cfg.algo.gamma,
        lmbda=cfg.algo.lmbda,
        cost_gamma=cfg.algo.cost_gamma,
        cost_lmbda=cfg.algo.cost_lmbda,
        reward_normalization=cfg.advantage_normalization,
        cost_normalization=cfg.advantage_normalization,
    )
    collector = make_run_collector(
        cfg.env.id,
        task_kwargs,
        nets.policy_net,
        steps_per_epoch=cfg.steps_per_epoch,
        seed=cfg.seed,
        collector=cfg.collector,
        num_workers=cfg.num_workers,
        envs_per_worker=cfg.envs_per_worker,
        normalize_obs=cfg.normalize_obs,
        obs_clip=cfg.obs_clip,
    )
    episodes = EpisodeTracker(
        num_constraints=num_costs,
        carry_over=False,
        cost_window=OmegaConf.select(cfg, "algo.cost_window"),
    )
    trainer = Trainer(collector, algo, nets, advantages, episodes, seed=cfg.seed)
    return SimpleNamespace(
        nets=nets,
        strategy=strategy,
        collector=collector,
        trainer=trainer,
        task_kwargs=task_kwargs,
        policy_net=nets.policy_net,
    )


def describe(cfg: DictConfig, parts: SimpleNamespace) -> dict:
    """``run.json``: what the comparison tools group and label runs by. The limits and slacks
    are numbers, or lists of one per constraint for a task with several."""
    env = OmegaConf.to_container(cfg.env, resolve=True)
    return {
        "env": cfg.env.id,
        "algo": cfg.algo.name,
        "strategy": getattr(parts.strategy, "strategy", parts.strategy).name,
        "seed": cfg.seed,
        "num_costs": safe_envs.num_costs(cfg.env.id),
        "cost_limit": env["cost_limit"],
        "slack_upper": env["upper_slack"],
        "slack_lower": env["lower_slack"],
        "total_steps": cfg.total_steps,
        "steps_per_epoch": cfg.steps_per_epoch,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def train_epochs(
    trainer: Trainer, run: TrainingRun, evaluate: Callable[[], dict], eval_every: int
) -> None:
    """One epoch at a time (on-policy: collect, statistics, advantages, strategy state, update;
    off-policy: strategy state, then steps and replay updates) until the budget is spent or a
    stop is asked; every ``eval_every``-th epoch adds ``evaluate()``'s values to its row; logs
    and checkpoints on the way."""
    while run.active(trainer):
        try:
            metrics = trainer.run_epoch()
        except FloatingPointError as err:
            raise run.nonfinite(trainer, err) from err
        if eval_every and trainer.epoch % eval_every == 0:
            metrics |= evaluate()
        run.record(trainer, metrics)
    run.close(trainer)


def evaluation(cfg: DictConfig, parts: SimpleNamespace, video_path: Path | None = None) -> dict:
    """``eval_episodes`` deterministic episodes on a fresh copy of the task, seeded
    ``seed + 10000`` (the same start states at every evaluation), observations scaled with the
    pooled training statistics; with ``video_path`` one is recorded as a GIF. Torch's random
    state is restored afterwards, so evaluating leaves training as it would have been."""
    with torch.random.fork_rng():
        return final_evaluation(
            parts.policy_net,
            cfg.env.id,
            parts.task_kwargs,
            episodes=cfg.eval_episodes,
            seed=cfg.seed + 10_000,
            obs_norm_state=pooled_obs_statistics(parts.collector) if cfg.normalize_obs else None,
            obs_clip=cfg.obs_clip,
            video_path=video_path,
        )


def finish(cfg: DictConfig, parts: SimpleNamespace, run: TrainingRun) -> dict:
    """Evaluation with the pooled observation statistics, the plot and the summary."""
    last = read_metrics(run.directory)[-1]
    summary = {
        "epochs": parts.trainer.epoch,
        "env_steps": parts.trainer.frames,
        "final_episode_return": last["episode_return"],
    }
    summary |= {  # episode_cost (K > 1: the sum) and episode_cost_k per constraint
        f"final_{name}": value
        for name, value in last.items()
        if name == "episode_cost" or name.startswith("episode_cost_")
    }
    summary["cost_limit"] = OmegaConf.to_container(cfg.env, resolve=True)["cost_limit"]
    summary |= evaluation(cfg, parts, run.directory / "episode.gif" if cfg.video else None)
    plot_run(run.directory)
    parts.collector.shutdown()
    run.write_summary(summary)
    print(
        f"\n{cfg.env.id} | {cfg.algo.name} + {describe(cfg, parts)['strategy']} | seed {cfg.seed}"
    )
    for key, value in summary.items():
        shown = f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else value
        if isinstance(value, list):
            shown = " / ".join(f"{v:g}" for v in value)
        print(f"  {key:24s} {shown}")
    print(f"  run directory            {run.directory}  (curves.png, metrics.csv)")
    return summary


register_resolvers()


@hydra.main(config_path="config", config_name="ppo_softswitch", version_base=None)
def main(cfg: DictConfig) -> None:
    # Imported by module name so that sweep launchers (joblib, Ray) send it by reference.
    from ppo_softswitch import train as train_run

    with exit_with_status():
        train_run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
