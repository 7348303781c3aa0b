"""Why ``gradmanip.fast`` exists: each specialisation against the generic path it replaces,
measured side by side in one run (alternating blocks, the median of the paired ratios is the
reported speed-up, in ``extra_info``).

1. The lean PPO step (``PPO(lean=True)``) against the generic step (``SafePPOLoss`` + the
   gradient driver + two ``torch.optim.Adam`` steps), one pass over 2,000 samples.
2. Hand-written MLP backpropagation against autograd: the per-objective policy gradients of one
   minibatch of 64.
3. ``FusedAdamSteps`` against ``torch.optim.Adam(fused=True).step()`` of the actor and the critics.
4. The lean collector against TorchRL's ``Collector``: 2,000 steps of SafetyHopperVelocity-v1.

With ``--benchmark-disable`` the work is scaled down so the suite runs in seconds.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable

import gymnasium
import torch

import safe_envs
from benchmarks.test_bench_ppo import HOPPER, synthetic_batch
from gradmanip.algos import PPO
from gradmanip.fast.fused_adam import FusedAdamSteps
from gradmanip.fast.lean_collector import make_lean_collector
from gradmanip.fast.mlp_backprop import GaussianPolicyGradients
from gradmanip.objectives import SafePPOLoss
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.models import make_actor_critic
from gradmanip.strategies import make_strategy

SOFT = {"cost_limit": 25.0, "upper_slack": 9.0, "lower_slack": -9.0}


def paired_speedup(fast: Callable[[], object], slow: Callable[[], object], pairs: int) -> dict:
    """Median and best of slow/fast time ratios over ``pairs`` alternating blocks."""
    fast(), slow()  # warm-up
    ratios, fast_times, slow_times = [], [], []
    for index in range(pairs):
        order = (fast, slow) if index % 2 == 0 else (slow, fast)
        times = {}
        for fn in order:
            start = time.perf_counter()
            fn()
            times[fn] = time.perf_counter() - start
        ratios.append(times[slow] / times[fast])
        fast_times.append(times[fast])
        slow_times.append(times[slow])
    return {
        "speedup_median": round(statistics.median(ratios), 3),
        "speedup_best_blocks": round(min(slow_times) / min(fast_times), 3),
        "fast_seconds": round(min(fast_times), 5),
        "generic_seconds": round(min(slow_times), 5),
        "pairs": pairs,
    }


def test_lean_ppo_step_over_generic_step(benchmark):
    quick = benchmark.disabled
    batch = synthetic_batch(256 if quick else 2000)

    def one_pass(lean: bool) -> Callable[[], object]:
        algo = PPO(
            make_actor_critic(11, 3, seed=0),
            make_strategy("soft_switch", **SOFT),
            epochs=1,
            minibatch_size=64,
            target_kl=None,
            lean=lean,
            generator=torch.Generator().manual_seed(0),
        )
        return lambda: algo.update(batch, torch.tensor([25.0]))

    result = paired_speedup(one_pass(True), one_pass(False), 2 if quick else 12)
    benchmark.extra_info.update(result)
    benchmark.pedantic(one_pass(True), rounds=1, iterations=1)
    assert result["speedup_median"] > 0


def test_mlp_backprop_over_autograd(benchmark):
    quick = benchmark.disabled
    nets = make_actor_critic(11, 3, seed=0)
    batch = synthetic_batch(64)
    obs, action = batch["observation"], batch["action"]
    old_log_prob = batch["action_log_prob"]
    advantages = torch.cat([batch["advantage"], batch["cost_advantage"]], dim=1)
    by_hand = GaussianPolicyGradients(nets.policy_net)
    loss = SafePPOLoss(nets.actor)
    params = list(nets.actor.parameters())

    def hand() -> object:
        return by_hand.loss_gradients(obs, action, old_log_prob, advantages, 0.2, 0.0)

    def autograd() -> object:
        out = loss(batch)
        reward = torch.autograd.grad(out["loss_objective"], params, retain_graph=True)
        return reward, torch.autograd.grad(out["loss_cost_objective"][0], params)

    repeat = 20 if quick else 500
    result = paired_speedup(
        lambda: [hand() for _ in range(repeat)],
        lambda: [autograd() for _ in range(repeat)],
        2 if quick else 12,
    )
    benchmark.extra_info.update(result)
    benchmark(hand)
    assert result["speedup_median"] > 0


def test_fused_adam_steps_over_optimizer_steps(benchmark):
    quick = benchmark.disabled
    nets = make_actor_critic(11, 3, seed=0)
    actor, critics = list(nets.actor.parameters()), list(nets.critics().parameters())
    flats = [torch.full((sum(p.numel() for p in group),), 1e-3) for group in (actor, critics)]
    views = [
        list(flat.split([p.numel() for p in group]))
        for flat, group in zip(flats, (actor, critics), strict=True)
    ]
    views = [
        [v.view_as(p) for v, p in zip(group_views, group, strict=True)]
        for group_views, group in zip(views, (actor, critics), strict=True)
    ]
    direct = FusedAdamSteps(
        [torch.optim.Adam(actor, fused=True), torch.optim.Adam(critics, fused=True)], views
    )
    optimizers = [torch.optim.Adam(actor, fused=True), torch.optim.Adam(critics, fused=True)]
    for params, group_views in zip((actor, critics), views, strict=True):
        for param, grad in zip(params, group_views, strict=True):
            param.grad = grad

    def stepped() -> None:
        for optimizer in optimizers:
            optimizer.step()

    repeat = 50 if quick else 2000
    result = paired_speedup(
        lambda: [direct.step([True, True]) for _ in range(repeat)],
        lambda: [stepped() for _ in range(repeat)],
        2 if quick else 12,
    )
    benchmark.extra_info.update(result)
    benchmark(lambda: direct.step([True, True]))
    assert result["speedup_median"] > 0


def test_lean_collector_over_torchrl_collector(benchmark):
    quick = benchmark.disabled
    frames = 256 if quick else 2000
    nets = make_actor_critic(11, 3, seed=0)

    def seeded_hopper() -> gymnasium.Env:
        env = gymnasium.make(HOPPER)
        env.reset(seed=0)
        return env

    lean = make_lean_collector(
        seeded_hopper,
        nets.policy_net,
        frames_per_batch=frames,
        seed=0,
        obs_norm=safe_envs.RunningObsNorm((11,)),
    )
    generic = make_collector(
        functools.partial(safe_envs.make_env, HOPPER, seed=0, normalize_obs=True),
        GaussianPolicy(nets.policy_net),
        frames_per_batch=frames,
        seed=0,
    )
    lean_batches, generic_batches = iter(lean), iter(generic)
    result = paired_speedup(
        lambda: next(lean_batches), lambda: next(generic_batches), 2 if quick else 10
    )
    benchmark.extra_info.update(result)
    benchmark.pedantic(lambda: next(lean_batches), rounds=1, iterations=1)
    lean.shutdown()
    generic.shutdown()
    assert result["speedup_median"] > 0
