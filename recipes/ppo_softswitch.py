"""Safe RL with a gradient-manipulation strategy on a base algorithm (default: PPO + PCRPO).

    python recipes/ppo_softswitch.py                                   # the main job
    python recipes/ppo_softswitch.py env=SafetyWalker2d-v4 strategy=lagrangian algo=trpo seed=3
    python recipes/ppo_softswitch.py resume=true                       # continue after a stop
    python recipes/ppo_softswitch.py -m seed=0,1,2 strategy=soft_switch,lagrangian   # a sweep

Each epoch: collect -> episode statistics -> reward and cost advantages -> strategy state ->
per-objective gradients combined by the strategy -> log, checkpoint. The run directory receives
``metrics.csv``, ``run.json``, ``checkpoints/last.pt``, ``curves.png`` and ``summary.json``.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import gymnasium
import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import safe_envs
from gradmanip.advantages import SafeAdvantages
from gradmanip.collect import GaussianPolicy, make_collector
from gradmanip.episodes import EpisodeTracker
from gradmanip.experiment.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from gradmanip.experiment.config_checks import (
    ConfigError,
    check_run_config,
    check_run_dir,
    run_dir_field,
)
from gradmanip.experiment.evaluate import evaluate, numpy_policy, record_gif
from gradmanip.experiment.exit_status import exit_with_status
from gradmanip.experiment.loggers import RunLogger
from gradmanip.experiment.progress import Progress
from gradmanip.experiment.stop_signals import RunStopped, StopRequest
from gradmanip.lean_collect import make_lean_collector
from gradmanip.models import make_actor_critic
from gradmanip.reporting import MetricsFile, plot_run, read_metrics, write_run_info
from gradmanip.strategies import DelayedSafety
from gradmanip.trainer import Trainer
from safe_envs import task_entry
from safe_envs.obs_norm import RunningObsNorm, merge_statistics


def train(cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    """Run (or resume) one training run in ``run_dir``; returns the final summary.

    Raises ConfigError (before any work) for a bad setting and RunStopped after the checkpoint
    of a run stopped by SIGINT/SIGTERM.
    """

    # 0. Check every setting before any work starts.
    def build_strategy():
        strategy = instantiate(cfg.strategy)
        return (
            DelayedSafety(strategy, cfg.safety_start_epoch) if cfg.safety_start_epoch else strategy
        )

    def build_algo(strategy, actor_critic=None):
        actor_critic = actor_critic or make_actor_critic(1, 1, cfg.hidden)
        return instantiate(cfg.algo.base)(actor_critic, strategy)

    check_run_config(cfg, build_strategy, build_algo)
    check_run_dir(run_dir, run_dir_field())
    if MetricsFile(run_dir).path.exists() and not cfg.resume:
        raise ConfigError(
            f"resume: {run_dir} already holds a run; pass resume=true to continue "
            "it, or choose another seed or hydra.run.dir"
        )
    if cfg.resume and (run_dir / "summary.json").exists():
        print(f"{run_dir} holds a finished run (summary.json); nothing to resume")
        return json.loads((run_dir / "summary.json").read_text())
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)

    # 1. Task, networks, strategy, base algorithm, advantages, collection.
    task_kwargs = OmegaConf.to_container(cfg.env.kwargs)
    make_env = functools.partial(
        safe_envs.make_env,
        cfg.env.id,
        num_envs=cfg.envs_per_worker,
        seed=cfg.seed,
        normalize_obs=cfg.normalize_obs,
        obs_clip=cfg.obs_clip,
        **task_kwargs,
    )
    probe = gymnasium.make(cfg.env.id, **task_kwargs)
    obs_dim, action_dim = probe.observation_space.shape[-1], probe.action_space.shape[-1]
    probe.close()
    actor_critic = make_actor_critic(
        obs_dim, action_dim, cfg.hidden, cfg.init_log_std, seed=cfg.seed
    )
    strategy = build_strategy()
    strategy_name = getattr(strategy, "strategy", strategy).name
    algo = build_algo(strategy, actor_critic)
    advantages = SafeAdvantages(
        actor_critic.reward_critic,
        actor_critic.cost_critic,
        gamma=cfg.algo.gamma,
        lmbda=cfg.algo.lmbda,
        cost_gamma=cfg.algo.cost_gamma,
        cost_lmbda=cfg.algo.cost_lmbda,
        reward_normalization=cfg.advantage_normalization,
        cost_normalization=cfg.advantage_normalization,
    )
    # Every epoch starts fresh episodes from a reset seeded by (seed, epoch): exactly resumable.
    single_env = cfg.num_workers == 1 and cfg.envs_per_worker == 1
    if cfg.collector == "lean" or (cfg.collector == "auto" and single_env):
        collector = make_lean_collector(
            functools.partial(seeded_task, cfg.env.id, cfg.seed, task_kwargs),
            actor_critic.policy_net,
            frames_per_batch=cfg.steps_per_epoch,
            seed=cfg.seed,
            reset_each_epoch=True,
            obs_norm=RunningObsNorm((obs_dim,), clip=cfg.obs_clip) if cfg.normalize_obs else None,
        )
    else:
        collector = make_collector(
            make_env,
            GaussianPolicy(actor_critic.policy_net),
            frames_per_batch=cfg.steps_per_epoch,
            num_workers=cfg.num_workers,
            seed=cfg.seed,
            reset_each_epoch=True,
        )
    episodes = EpisodeTracker(carry_over=False)
    trainer = Trainer(collector, algo, actor_critic, advantages, episodes, seed=cfg.seed)

    # 2. Run directory: description, logs, and the checkpoint to resume from.
    write_run_info(
        run_dir,
        {
            "env": cfg.env.id,
            "algo": cfg.algo.name,
            "strategy": strategy_name,
            "seed": cfg.seed,
            "cost_limit": cfg.env.cost_limit,
            "slack_upper": cfg.env.upper_slack,
            "slack_lower": cfg.env.lower_slack,
            "total_steps": cfg.total_steps,
            "steps_per_epoch": cfg.steps_per_epoch,
            "config": OmegaConf.to_container(cfg, resolve=True),
        },
    )
    logger = RunLogger(
        run_dir, cfg.logger.backends, name=run_dir.name, wandb_project=cfg.logger.wandb_project
    )
    checkpoints = run_dir / "checkpoints"
    if cfg.resume and has_checkpoint(checkpoints):
        trainer.load_state_dict(load_checkpoint(checkpoints))
        logger.truncate_after(trainer.epoch)
        print(f"resumed {run_dir} at epoch {trainer.epoch} ({trainer.frames} steps)")
    elif cfg.resume:
        print(f"resume: no checkpoint in {checkpoints} yet, starting from the beginning")
        logger.truncate_after(0)

    # 3. Train: one policy iteration per epoch until the budget is spent or a stop is asked.
    progress = Progress(cfg.total_steps, initial=trainer.frames, enabled=cfg.progress)
    with StopRequest() as stop:
        while trainer.frames < cfg.total_steps and stop.requested is None:
            try:
                metrics = trainer.run_epoch()
            except FloatingPointError as err:
                raise FloatingPointError(
                    f"non-finite values at epoch {trainer.epoch + 1} (after {trainer.frames} "
                    f"environment steps): {err}. The last good checkpoint in {checkpoints} is "
                    "intact."
                ) from err
            counters = {"epoch": trainer.epoch, "env_steps": trainer.frames}
            metrics = counters | {k: v for k, v in metrics.items() if k not in counters}
            logger.log(metrics)
            progress.update(metrics)
            if trainer.epoch % cfg.checkpoint_every == 0:
                save_checkpoint(checkpoints, trainer.state_dict())
        if trainer.epoch % cfg.checkpoint_every or not has_checkpoint(checkpoints):
            save_checkpoint(checkpoints, trainer.state_dict())  # the last epoch, if not yet saved
    progress.close()
    logger.close()
    if stop.requested is not None:
        collector.shutdown()
        raise RunStopped(
            stop.requested,
            f"stopped by {stop.requested} at epoch {trainer.epoch}; "
            f"continue with resume=true (run directory {run_dir})",
        )

    # 4. The end: evaluation with the pooled observation statistics, plot and summary.
    last = read_metrics(run_dir)[-1]
    summary = {
        "epochs": trainer.epoch,
        "env_steps": trainer.frames,
        "final_episode_return": last["episode_return"],
        "final_episode_cost": last["episode_cost"],
        "cost_limit": float(cfg.env.cost_limit),
    }
    obs_stats = pooled_obs_statistics(collector) if cfg.normalize_obs else None
    episode_steps = task_kwargs.get("max_episode_steps") or task_entry(cfg.env.id).max_episode_steps
    if cfg.eval_episodes:
        eval_env = functools.partial(
            safe_envs.make_env,
            cfg.env.id,
            normalize_obs=cfg.normalize_obs,
            obs_clip=cfg.obs_clip,
            seed=cfg.seed + 10_000,
            **task_kwargs,
        )
        policy = GaussianPolicy(actor_critic.policy_net)
        summary.update(
            evaluate(policy, eval_env, cfg.eval_episodes, episode_steps, obs_norm_state=obs_stats)
        )
    if cfg.video:
        normalize = None
        if obs_stats is not None:
            normalize = RunningObsNorm((obs_dim,), clip=cfg.obs_clip)
            normalize.load_state_dict(obs_stats)
        gif = record_gif(
            numpy_policy(actor_critic.policy_net, normalize.normalize if normalize else None),
            functools.partial(gymnasium.make, cfg.env.id, **task_kwargs),
            run_dir / "episode.gif",
            max_steps=episode_steps,
        )
        if gif is not None:
            summary["video"] = str(gif)
    plot_run(run_dir)
    collector.shutdown()
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\n{cfg.env.id} | {cfg.algo.name} + {strategy_name} | seed {cfg.seed}")
    for key, value in summary.items():
        shown = f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else value
        print(f"  {key:24s} {shown}")
    print(f"  run directory            {run_dir}  (curves.png, metrics.csv)")
    return summary


def seeded_task(env_id: str, seed: int, task_kwargs: dict) -> gymnasium.Env:
    """The Gymnasium task, reset once with ``seed`` (as ``safe_envs.make_env(seed=...)``)."""
    env = gymnasium.make(env_id, **task_kwargs)
    env.reset(seed=seed)
    return env


def pooled_obs_statistics(collector) -> dict:
    """Observation statistics of every collector process, pooled into one normaliser state."""
    state = collector.state_dict()
    workers = [v for k, v in state.items() if k.startswith("worker")] or [state]
    return merge_statistics([w["env_state_dict"] for w in workers])


@hydra.main(config_path="config", config_name="ppo_softswitch", version_base=None)
def main(cfg: DictConfig) -> None:
    # Imported by module name so that sweep launchers (joblib, Ray) send it by reference.
    from ppo_softswitch import train as train_run

    with exit_with_status():
        train_run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
