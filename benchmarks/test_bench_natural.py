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


def test_bench_trust_region_rules_against_pcrpo(benchmark) -> None:
    """CPO and PCPO against PCRPO on the natural base, same networks and batch, side by side.

    Each round times one update of every strategy (each goes first in turn) from the same
    parameters (critics not fitted, so the policy step is all that is timed); the figure is the
    median over rounds of the paired ratio ``t(rule) / t(PCRPO)`` in CPU time (steadier than
    wall time on a shared machine; both are stored in ``extra_info``, with the line search steps
    each took). Target <= 1.1. Timing is informative and never asserted.
    """
    actor_critic = make_actor_critic(OBS_DIM, ACTION_DIM, seed=0)
    batch = synthetic_batch(actor_critic.policy_net)
    episode_cost = torch.tensor([22.0])  # in PCRPO's band [20, 30]; c = -3 for the rules
    strategies = {
        "pcrpo": make_strategy("soft_switch", cost_limit=25.0, upper_slack=5.0, lower_slack=-5.0),
        "cpo": make_strategy("cpo", cost_limit=25.0),
        "pcpo": make_strategy("pcpo", cost_limit=25.0),
    }
    algos = {
        name: NaturalGradient(actor_critic, strategy, max_kl=0.01, critic_epochs=0)
        for name, strategy in strategies.items()
    }
    params = algos["pcrpo"].policy_params
    initial = flat_params(params)

    order = list(algos)

    def one_round() -> dict[str, tuple[float, float, dict[str, float]]]:
        order.append(order.pop(0))  # each strategy in turn goes first
        times = {}
        for name in order:
            algo = algos[name]
            set_flat_params(params, initial)
            wall, cpu = time.perf_counter(), time.process_time()
            metrics = algo.update(batch, episode_cost)
            times[name] = (time.process_time() - cpu, time.perf_counter() - wall, metrics)
        set_flat_params(params, initial)
        return times

    rounds = [benchmark.pedantic(one_round, rounds=1, iterations=1)]
    rounds += [one_round() for _ in range(0 if benchmark.disabled else 8)]
    for times in rounds:
        for name, (_, _, metrics) in times.items():
            assert metrics["step_accepted"] == 1.0, name
    figures: dict[str, float] = {}
    for name in ("cpo", "pcpo"):
        for clock, index in (("cpu", 0), ("wall", 1)):
            ratios = sorted(times[name][index] / times["pcrpo"][index] for times in rounds)
            figures[f"{name}_over_pcrpo_{clock}_median"] = ratios[len(ratios) // 2]
        figures[f"{name}_line_search_steps"] = rounds[0][name][2]["line_search_steps"]
    figures["pcrpo_cpu_seconds"] = min(times["pcrpo"][0] for times in rounds)
    figures["pcrpo_line_search_steps"] = rounds[0]["pcrpo"][2]["line_search_steps"]
    figures["target_ratio"] = 1.1
    benchmark.extra_info.update(figures)
    print(
        f"\nnatural base, {len(rounds)} round(s): PCRPO {figures['pcrpo_cpu_seconds']:.3f} s CPU;"
        f" CPO / PCRPO {figures['cpo_over_pcrpo_cpu_median']:.3f} CPU, "
        f"{figures['cpo_over_pcrpo_wall_median']:.3f} wall; PCPO / PCRPO "
        f"{figures['pcpo_over_pcrpo_cpu_median']:.3f} CPU, "
        f"{figures['pcpo_over_pcrpo_wall_median']:.3f} wall (target <= 1.1); line search steps "
        f"{figures['pcrpo_line_search_steps']:.0f} / {figures['cpo_line_search_steps']:.0f} / "
        f"{figures['pcpo_line_search_steps']:.0f}"
    )
