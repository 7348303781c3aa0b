"""SAC with every strategy: Polyak averaging by hand, finite losses and moved parameters."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from gradmanip.algos import SAC
from gradmanip.rl.sac_models import make_sac_networks
from gradmanip.strategies import available_strategies, make_strategy

B, OBS, ACT = 16, 3, 2


def replay_batch(seed: int = 0) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    done = torch.rand(B, 1, generator=g) < 0.2
    return TensorDict(
        {
            "observation": torch.randn(B, OBS, generator=g),
            "action": torch.rand(B, ACT, generator=g) * 2 - 1,
            "next": {
                "observation": torch.randn(B, OBS, generator=g),
                "reward": torch.randn(B, 1, generator=g),
                "cost": torch.rand(B, 1, generator=g),
                "terminated": done,
                "done": done,
            },
        },
        [B],
    )


def flat(params) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).clone() for p in params])


def make_sac(strategy: str = "soft_switch", **kwargs) -> SAC:
    torch.manual_seed(0)
    nets = make_sac_networks(OBS, ACT, (16, 16), seed=0)
    return SAC(nets, make_strategy(strategy), **kwargs)


def test_target_critics_move_by_polyak_averaging():
    sac = make_sac(tau=0.1)
    loss = sac.loss_module
    with torch.no_grad():
        loss.target_qvalue_network_params.apply_(lambda t: t.add_(1.0))
    source = flat(loss.qvalue_network_params.values(True, True))
    target = flat(loss.target_qvalue_network_params.values(True, True))
    cost_source = flat(loss.cost_qvalue_network_params.values(True, True))
    cost_target = flat(loss.target_cost_qvalue_network_params.values(True, True))
    sac.target_updater.step()
    torch.testing.assert_close(
        flat(loss.target_qvalue_network_params.values(True, True)), 0.9 * target + 0.1 * source
    )
    torch.testing.assert_close(
        flat(loss.target_cost_qvalue_network_params.values(True, True)),
        0.9 * cost_target + 0.1 * cost_source,
    )


@pytest.mark.parametrize("name", available_strategies())
def test_every_strategy_trains_sac_with_finite_losses(name):
    sac = make_sac(name)
    loss = sac.loss_module
    actor = flat(sac.actor_params)
    critics = flat(sac.critic_params)
    targets = flat(loss.target_cost_qvalue_network_params.values(True, True))
    log_alpha = loss.log_alpha.item()
    for step in range(3):
        metrics = sac.update(replay_batch(step), torch.tensor([30.0]))
    for key, value in metrics.items():
        assert bool(torch.isfinite(torch.as_tensor(value, dtype=torch.float64)).all()), key
    assert metrics["loss/cost"].shape == (1,)
    assert not torch.equal(actor, flat(sac.actor_params))
    assert not torch.equal(critics, flat(sac.critic_params))
    assert not torch.equal(targets, flat(loss.target_cost_qvalue_network_params.values(True, True)))
    assert loss.log_alpha.item() != log_alpha
    assert sac.updates_done == 3


def test_cost_only_mode_moves_the_actor_down_the_cost_critic():
    """Above the band soft switching follows g_c alone: with the critics held (a negligible
    critic learning rate), one small actor step lowers L_c on the same sample and raises L_r."""
    sac = make_sac("soft_switch", lr=1e-4, critic_lr=1e-12)
    sac.strategy = sac.driver.strategy = make_strategy("soft_switch", cost_limit=1.0)
    batch = replay_batch()

    def losses() -> tuple[float, float]:
        torch.manual_seed(5)
        out = sac.loss_module(batch.clone())
        return out["loss_cost_objective"].item(), out["loss_objective"].item()

    cost_before, _ = losses()
    torch.manual_seed(5)
    metrics = sac.update(batch.clone(), torch.tensor([100.0]))
    assert metrics["strategy/mode"] == 2.0
    cost_after, _ = losses()
    assert cost_after < cost_before


def actor_gradient(sac: SAC, loss: torch.Tensor) -> torch.Tensor:
    return torch.cat(
        [g.reshape(-1) for g in torch.autograd.grad(loss, sac.actor_params, retain_graph=True)]
    )


@pytest.mark.parametrize("entropy_term", ["reward", "shared"])
def test_entropy_term_in_cost_only_mode(entropy_term):
    """Hard switching above the limit follows the cost alone: with entropy_term="reward" the
    actor's gradient is grad L_c; with "shared" it is grad L_c + grad E[alpha log pi]."""
    sac = make_sac("hard_switch", entropy_term=entropy_term)
    batch, episode_cost = replay_batch(), torch.tensor([1e3])
    loss = sac.loss_module
    torch.manual_seed(5)
    out = loss.actor_losses(batch)
    expected = actor_gradient(sac, out["loss_cost_objective"].sum())
    if entropy_term == "shared":
        expected = expected + actor_gradient(sac, out["loss_entropy"])
    torch.manual_seed(5)
    losses = loss.actor_losses(batch)
    sac._actor_direction(losses, episode_cost)
    grad = torch.cat([p.grad.reshape(-1) for p in sac.actor_params])
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-7)


def test_shared_entropy_with_the_reward_objective_alone_is_plain_sac():
    """Below the limit soft switching follows the reward alone: both entropy settings give
    the same actor gradient, grad E[alpha log pi - min Q_r]."""
    grads = []
    for entropy_term in ("reward", "shared"):
        sac = make_sac("soft_switch", entropy_term=entropy_term)
        torch.manual_seed(5)
        sac._actor_direction(sac.loss_module.actor_losses(replay_batch()), torch.tensor([0.0]))
        grads.append(torch.cat([p.grad.reshape(-1) for p in sac.actor_params]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_state_dict_round_trip_continues_identically():
    first, second = make_sac("lagrangian"), make_sac("lagrangian")
    for step in range(2):
        first.update(replay_batch(step), torch.tensor([5.0]))
    second.load_state_dict(first.state_dict())
    second.networks.actor.load_state_dict(first.networks.actor.state_dict())
    torch.manual_seed(9)
    a = first.update(replay_batch(7), torch.tensor([5.0]))
    torch.manual_seed(9)
    b = second.update(replay_batch(7), torch.tensor([5.0]))
    for key in a:
        torch.testing.assert_close(torch.as_tensor(a[key]), torch.as_tensor(b[key]), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tau": 0.0}, "tau"),
        ({"lr": -1.0}, "lr"),
        ({"gamma": 2.0}, "gamma"),
        ({"num_constraints": 0}, "num_constraints"),
        ({"actor_delay": 0}, "actor_delay"),
        ({"entropy_term": "both"}, "entropy_term"),
        ({"num_cost_qvalue_nets": 0}, "num_cost_qvalue_nets"),
        ({"fixed_alpha": "false"}, "fixed_alpha must be true or false"),
        ({"target_entropy": "foo"}, "target_entropy must be 'auto'"),
        ({"target_entropy": float("nan")}, "target_entropy must be 'auto'"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sac(**kwargs)


def test_actor_delay_updates_the_actor_every_second_step():
    sac = make_sac("lagrangian", actor_delay=2)
    actor, critics = flat(sac.actor_params), flat(sac.critic_params)
    first = sac.update(replay_batch(0), torch.tensor([5.0]))
    after_first = flat(sac.actor_params)
    assert not torch.equal(actor, after_first) and "loss/reward" in first
    second = sac.update(replay_batch(1), torch.tensor([5.0]))
    assert torch.equal(after_first, flat(sac.actor_params))  # critics only
    assert "loss/reward" not in second and "loss/qvalue" in second
    assert not torch.equal(critics, flat(sac.critic_params))
    sac.update(replay_batch(2), torch.tensor([5.0]))
    assert not torch.equal(after_first, flat(sac.actor_params))
