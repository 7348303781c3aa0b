"""A real batch of the toy task for the natural-gradient tests, and the surrogates it measures."""

from __future__ import annotations

from functools import partial

import torch
from tensordict import TensorDictBase

import safe_envs
from gradmanip.algos.trust_region import gaussian_kl, gaussian_log_prob
from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.models import ActorCritic

# a low speed threshold: costs in every batch, so reward and cost conflict
TASK = partial(safe_envs.make_env, "SafetyPointVelocity-v0", speed_threshold=0.1)


def collect_batch(actor_critic: ActorCritic) -> TensorDictBase:
    """A flat batch of 400 steps (4 episodes) with advantages and value targets."""
    collector = make_collector(
        TASK, GaussianPolicy(actor_critic.policy_net), frames_per_batch=400, seed=0
    )
    batch = next(iter(collector))
    collector.shutdown()
    SafeAdvantages(actor_critic.reward_critic, actor_critic.cost_critic)(batch)
    return batch.reshape(-1)


def surrogates(actor_critic: ActorCritic, batch: TensorDictBase) -> tuple[float, float, float]:
    """(reward surrogate, cost surrogate E[ratio A_c], mean KL from the batch policy)."""
    with torch.no_grad():
        loc, scale = actor_critic.policy_net(batch["observation"])
        log_ratio = gaussian_log_prob(batch["action"], loc, scale) - batch["action_log_prob"]
        ratio = log_ratio.exp()
        reward = float((ratio * batch["advantage"].reshape(-1)).mean())
        cost = float((ratio * batch["cost_advantage"].reshape(-1)).mean())
        kl = float(gaussian_kl(batch["loc"], batch["scale"], loc, scale).mean())
    return reward, cost, kl
