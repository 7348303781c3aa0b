"""Speed of one natural-gradient policy update (two CG solves + line search) at the paper's scale.

16,000 samples (16 episodes x 1000 steps), 64x64 tanh policy, an 11-dim observation and a 3-dim
action (Hopper-sized). The figure of merit is the update time in units of one surrogate
gradient (forward + backward on the same batch), stored in ``extra_info``.
"""

from __future__ import annotations

import time

import pytest
import torch
from tensordict import TensorDict

from gradmanip.algos.natural_gradient import NaturalGradient
from gradmanip.algos.trust_region import gaussian_kl, gaussian_log_prob
from gradmanip.driver.flat import flat_params, set_flat_params
from gradmanip.rl.models import make_actor_critic
from gradmanip.strategies import make_strategy

SAMPLES, OBS_DIM, ACTION_DIM = 16_000, 11, 3


@pytest.fixture(autouse=True)
def single_thread():
    """One torch thread: tiny tensors on a shared 2-core machine run fastest (and steadiest)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def synthetic_batch(policy_net: torch.nn.Module) -> TensorDict:
    """Actions sampled from the policy; advantages that reward and penalise opposite moves."""
    gen = torch.Generator().manual_seed(0)
    obs = torch.randn(SAMPLES, OBS_DIM, generator=gen)
    with torch.no_grad():
        loc, scale = policy_net(obs)
        action = loc + scale * torch.randn(loc.shape, generator=gen)
        log_prob = gaussian_log_prob(action, loc, scale)
    push = ((action - loc) / scale)[:, 0] * obs[:, 0]
    advantage = (push - push.mean()) / push.std()
    cost_advantage = -0.5 * advantage + torch.randn(SAMPLES, generator=gen)
    return TensorDict(
        {
            "observation": obs,
            "action": action,
            "action_log_prob": log_prob,
            "loc": loc,
            "scale": scale,
            "advantage": advantage[:, None],
            "cost_advantage": cost_advantage[:, None],
            "value_target": torch.zeros(SAMPLES, 1),
            "cost_value_target": torch.zeros(SAMPLES, 1),
        },
        batch_size=[SAMPLES],
    )


def surrogate_gradient_seconds(policy_net: torch.nn.Module, batch: TensorDict) -> float:
    """Best-of-3 time of one surrogate forward + backward on the whole batch."""
    params = list(policy_net.parameters())
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        loc, scale = policy_net(batch["observation"])
        log_ratio = gaussian_log_prob(batch["action"], loc, scale) - batch["action_log_prob"]
        loss = -(log_ratio.exp() * batch["advantage"].reshape(-1)).mean()
        torch.autograd.grad(loss, params)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("fisher_fraction", [1.0, 0.1])
def test_bench_natural_gradient_update(benchmark, fisher_fraction: float) -> None:
    actor_critic = make_actor_critic(OBS_DIM, ACTION_DIM, seed=0)
    strategy = make_strategy("soft_switch", cost_limit=25.0, upper_slack=5.0, lower_slack=-5.0)
    algo = NaturalGradient(
        actor_critic, strategy, max_kl=0.01, critic_epochs=0, fisher_fraction=fisher_fraction
    )
    policy_net = actor_critic.policy_net
    batch = synthetic_batch(policy_net)
    initial = flat_params(algo.policy_params)
    episode_cost = torch.tensor([25.0])  # inside the band: both steps, PCRPO combination

    def restore() -> None:
        set_flat_params(algo.policy_params, initial)

    metrics = benchmark.pedantic(
        algo.update, args=(batch, episode_cost), setup=restore, rounds=3, iterations=1
    )

    assert metrics["step_accepted"] == 1.0 and metrics["strategy/mode"] == 0.0
    assert not torch.equal(flat_params(algo.policy_params), initial)
    with torch.no_grad():
        loc, scale = policy_net(batch["observation"])
        kl = float(gaussian_kl(batch["loc"], batch["scale"], loc, scale).mean())
    assert kl <= algo.kl_slack * algo.max_kl

    start = time.perf_counter()
    restore()
    algo.update(batch, episode_cost)
    update_seconds = time.perf_counter() - start
    gradient_seconds = surrogate_gradient_seconds(policy_net, batch)
    benchmark.extra_info.update(
        {
            "samples": SAMPLES,
            "update_seconds": update_seconds,
            "surrogate_gradient_seconds": gradient_seconds,
            "update_in_surrogate_gradients": update_seconds / gradient_seconds,
            "kl": kl,
        }
    )
    print(
        f"\nnatural-gradient update (fisher_fraction={fisher_fraction}): {update_seconds:.3f} s"
        f" = {update_seconds / gradient_seconds:.1f} surrogate gradients"
        f" ({gradient_seconds * 1e3:.1f} ms each)"
    )
