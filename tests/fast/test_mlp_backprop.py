"""Hand-written backpropagation equals autograd (policy surrogates, critics, whole PPO update)."""

import pytest
import torch
from tensordict import TensorDict
from torch import nn

from gradmanip.algos import PPO
from gradmanip.fast.mlp_backprop import (
    CriticGradients,
    GaussianPolicyGradients,
    TanhMLPBackprop,
    is_tanh_mlp,
)
from gradmanip.gaussian import gaussian_log_prob
from gradmanip.objectives import clipped_surrogates
from gradmanip.rl.models import make_actor_critic
from gradmanip.strategies import make_strategy


def autograd_loss_gradients(policy_net, obs, action, old_log_prob, adv, cost_adv, eps, ent):
    loc, scale = policy_net(obs)
    ratio = (gaussian_log_prob(action, loc, scale) - old_log_prob).exp()
    reward, costs = clipped_surrogates(ratio, adv, cost_adv, eps)
    entropy = (scale.log() + 0.5 + 0.5 * torch.log(torch.tensor(2 * torch.pi))).sum(-1).mean()
    losses = [-reward - ent * entropy, *costs.unbind(0)]
    params = list(policy_net.parameters())
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(loss, params, retain_graph=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows), torch.stack([loss.detach() for loss in losses])


@pytest.mark.parametrize("num_constraints, entropy_coef", [(1, 0.0), (2, 0.01)])
def test_policy_loss_gradients_match_autograd(num_constraints, entropy_coef):
    torch.manual_seed(0)
    actor_critic = make_actor_critic(5, 3, hidden=(16, 8), seed=0)
    obs, action = torch.randn(40, 5), torch.randn(40, 3)
    # an old policy far enough away that many ratios are clipped
    old_log_prob = gaussian_log_prob(action, torch.zeros(40, 3), torch.full((40, 3), 0.6))
    old_log_prob = old_log_prob + 0.3 * torch.randn(40)
    adv, cost_adv = torch.randn(40), torch.randn(40, num_constraints)
    lean = GaussianPolicyGradients(actor_critic.policy_net)
    advantages = torch.cat([adv.unsqueeze(-1), cost_adv], dim=1)
    got, got_losses = lean.loss_gradients(obs, action, old_log_prob, advantages, 0.2, entropy_coef)
    want, want_losses = autograd_loss_gradients(
        actor_critic.policy_net, obs, action, old_log_prob, adv, cost_adv, 0.2, entropy_coef
    )
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(got_losses, want_losses, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cost_hidden", [None, (16, 8)])
def test_critic_gradients_match_autograd(cost_hidden):
    """Equal critics run batched (stacked weights), unequal ones one by one: same gradients."""
    actor_critic = make_actor_critic(4, 2, seed=1)
    critics = [actor_critic.reward_critic.module, actor_critic.cost_critic.module]
    if cost_hidden is not None:
        critics[1] = make_actor_critic(4, 2, hidden=cost_hidden, seed=2).cost_critic.module
    obs, targets = torch.randn(30, 4), [torch.randn(30, 1), torch.randn(30, 1)]
    lean = CriticGradients(critics)
    assert lean.batched == (cost_hidden is None)
    losses = lean.compute(obs, targets)
    got = [p.grad.clone() for c in critics for p in c.parameters()]
    assert lean.flat_grad.norm() == pytest.approx(
        torch.cat([g.reshape(-1) for g in got]).norm().item(), rel=1e-6
    )
    for critic in critics:
        critic.zero_grad(set_to_none=True)
    errors = [(c(obs) - t).square().mean() for c, t in zip(critics, targets, strict=True)]
    sum(errors).backward()
    want = [p.grad for c in critics for p in c.parameters()]
    for got_grad, want_grad in zip(got, want, strict=True):
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(losses, torch.stack(errors).detach())
    assert "batched" in repr(lean)


@pytest.mark.parametrize("k", [1, 2])
def test_lean_and_autograd_ppo_updates_agree(k):
    """Also with K = 2 constraints: a two-output cost critic (the critics then differ in shape
    and run one by one) and two cost-advantage columns."""
    g = torch.Generator().manual_seed(0)
    n = 128
    loc, scale = 0.1 * torch.randn(n, 2, generator=g), torch.full((n, 2), 0.6)
    action = loc + scale * torch.randn(n, 2, generator=g)
    batch = TensorDict(
        {
            "observation": torch.randn(n, 3, generator=g),
            "action": action,
            "loc": loc,
            "scale": scale,
            "action_log_prob": gaussian_log_prob(action, loc, scale),
            "advantage": torch.randn(n, 1, generator=g),
            "cost_advantage": torch.randn(n, k, generator=g),
            "value_target": torch.randn(n, 1, generator=g),
            "cost_value_target": torch.randn(n, k, generator=g),
        },
        [n],
    )
    results = []
    for lean in (True, False):
        actor_critic = make_actor_critic(3, 2, seed=5, num_costs=k)
        algo = PPO(
            actor_critic,
            make_strategy("soft_switch", cost_limit=[10.0] * k, upper_slack=5.0, lower_slack=-5.0),
            epochs=3,
            minibatch_size=32,
            target_kl=None,
            max_grad_norm=0.5,
            lean=lean,
            generator=torch.Generator().manual_seed(1),
        )
        assert algo.lean == lean
        metrics = algo.update(batch, torch.tensor([10.0] * k))
        params = torch.cat([p.detach().reshape(-1) for p in actor_critic.actor.parameters()])
        critic = torch.cat([p.detach().reshape(-1) for p in actor_critic.critics().parameters()])
        results.append((params, critic, metrics))
    (p1, c1, m1), (p2, c2, m2) = results
    torch.testing.assert_close(p1, p2, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(c1, c2, rtol=1e-4, atol=1e-5)
    assert m1["loss/reward"] == pytest.approx(m2["loss/reward"], rel=1e-4, abs=1e-6)
    cosines = ["strategy/cosine"] if k == 1 else [f"strategy/cosine_{i}" for i in range(k)]
    for name in cosines + [key for key in m1 if key.startswith("loss/cost")]:
        assert m1[name] == pytest.approx(m2[name], rel=1e-3, abs=1e-5), name


def test_unsupported_networks_are_detected():
    assert is_tanh_mlp(nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)))
    assert not is_tanh_mlp(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
    with pytest.raises(TypeError, match="nn.Tanh"):
        TanhMLPBackprop(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
    actor_critic = make_actor_critic(2, 1)
    actor_critic.reward_critic.module[1] = nn.ReLU()
    assert PPO(actor_critic, make_strategy("reward_only")).lean is False
    with pytest.raises(TypeError, match="lean=True"):
        PPO(actor_critic, make_strategy("reward_only"), lean=True)
