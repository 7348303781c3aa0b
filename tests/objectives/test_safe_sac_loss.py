"""SafeSACLoss against hand-computed values on a tiny batch: soft targets with the twin minimum
and the entropy term, cost targets, per-objective actor losses, the temperature loss."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict

from gradmanip.objectives import SafeSACLoss
from gradmanip.rl.sac_models import make_sac_networks

B, OBS, ACT, K = 5, 3, 2, 2
LOW, HIGH = torch.tensor([-2.0, -1.0]), torch.tensor([1.0, 3.0])


def batch() -> TensorDict:
    g = torch.Generator().manual_seed(1)
    terminated = torch.tensor([[False], [True], [False], [False], [True]])
    truncated = torch.tensor([[False], [False], [True], [False], [False]])  # bootstrapped
    return TensorDict(
        {
            "observation": torch.randn(B, OBS, generator=g),
            "action": LOW + (HIGH - LOW) * torch.rand(B, ACT, generator=g),
            "next": {
                "observation": torch.randn(B, OBS, generator=g),
                "reward": torch.randn(B, 1, generator=g),
                "cost": torch.rand(B, K, generator=g),
                "terminated": terminated,
                "truncated": truncated,
                "done": terminated | truncated,
            },
        },
        [B],
    )


def make_loss(**kwargs) -> SafeSACLoss:
    nets = make_sac_networks(OBS, ACT, (8,), LOW.tolist(), HIGH.tolist(), seed=0)
    loss = SafeSACLoss(nets.actor, nets.qvalue, nets.cost_qvalue, num_constraints=K, **kwargs)
    with torch.no_grad():  # targets distinct from the online critics
        loss.target_qvalue_network_params.apply_(lambda t: t.add_(0.1))
        loss.target_cost_qvalue_network_params.apply_(lambda t: t.sub_(0.05))
    return loss


def mlp(params, x: torch.Tensor) -> torch.Tensor:
    """The one-hidden-layer ReLU MLP of ``params`` (state-action input), by hand: [B]."""
    flat = params.flatten_keys(".")
    w0, b0 = flat["module.net.0.weight"], flat["module.net.0.bias"]
    w1, b1 = flat["module.net.2.weight"], flat["module.net.2.bias"]
    return (torch.relu(x @ w0.T + b0) @ w1.T + b1).squeeze(-1)


def tanh_gaussian_sample(loss: SafeSACLoss, obs: torch.Tensor, noise: torch.Tensor):
    """a = low + (high - low)(tanh(u) + 1) / 2 with u = loc + scale * noise, and log pi(a|s)
    by the change of variables."""
    with loss.actor_network_params.to_module(loss.actor_network):
        out = loss.actor_network.module[0](TensorDict({"observation": obs}, [obs.shape[0]]))
    loc, scale = out["loc"], out["scale"]
    u = loc + scale * noise
    action = LOW + (HIGH - LOW) * (torch.tanh(u) + 1) / 2
    log_det = torch.log((HIGH - LOW) / 2 * (1 - torch.tanh(u) ** 2))
    normal = -((u - loc) ** 2) / (2 * scale**2) - scale.log() - 0.5 * math.log(2 * math.pi)
    return action, (normal - log_det).sum(-1)


def test_losses_match_hand_computation():
    gamma, cost_gamma, alpha = 0.9, 0.8, 0.5
    loss = make_loss(gamma=gamma, cost_gamma=cost_gamma, alpha_init=alpha)
    td = batch()
    torch.manual_seed(3)
    out = loss(td.clone())
    torch.manual_seed(3)  # the two draws: the targets' next action, then the actor's action
    noises = [torch.randn(B, ACT) for _ in range(2)]
    with torch.no_grad():
        obs, act = td["observation"], td["action"]
        nxt = td["next", "observation"]
        alive = 1.0 - td["next", "terminated"].float().squeeze(-1)
        q, q_target = loss.qvalue_network_params, loss.target_qvalue_network_params
        c, c_target = loss.cost_qvalue_network_params, loss.target_cost_qvalue_network_params
        # soft target: r + gamma (1 - terminal) (min_i Q'_i(s', a') - alpha log pi(a'|s'))
        a1, lp1 = tanh_gaussian_sample(loss, nxt, noises[0])
        soft = torch.min(*(mlp(q_target[i], torch.cat([nxt, a1], -1)) for i in range(2)))
        y_r = td["next", "reward"].squeeze(-1) + gamma * alive * (soft - alpha * lp1)
        expected_q = sum(
            ((mlp(q[i], torch.cat([obs, act], -1)) - y_r) ** 2).mean() for i in range(2)
        )
        # cost targets on the same next action: c_k + gamma_c (1 - terminal) Q'_c,k(s', a')
        expected_c = 0.0
        for k in range(K):
            y_c = td["next", "cost"][:, k] + cost_gamma * alive * mlp(
                c_target[k], torch.cat([nxt, a1], -1)
            )
            expected_c += ((mlp(c[k], torch.cat([obs, act], -1)) - y_c) ** 2).mean()
        # actor losses on one reparameterised sample
        a3, lp3 = tanh_gaussian_sample(loss, obs, noises[1])
        sa = torch.cat([obs, a3], -1)
        min_q = torch.min(mlp(q[0], sa), mlp(q[1], sa))
        expected_reward, expected_entropy = -min_q.mean(), (alpha * lp3).mean()
        expected_cost = torch.stack([mlp(c[k], sa).mean() for k in range(K)])
        expected_alpha = (-math.log(alpha) * (lp3 - ACT)).mean()  # target entropy -dim(A)
    torch.testing.assert_close(out["loss_qvalue"], expected_q, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss_cost_qvalue"], expected_c, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss_objective"], expected_reward, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss_entropy"], expected_entropy, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss_cost_objective"], expected_cost, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss_alpha"], expected_alpha, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["entropy"], -lp3.mean(), rtol=1e-5, atol=1e-6)
    assert out["loss_cost_objective"].shape == (K,)


def test_actor_losses_reach_only_the_actor_and_critic_losses_only_the_critics():
    loss = make_loss()
    out = loss(batch())
    actor = list(loss.actor_network_params.values(True, True))
    critics = list(loss.qvalue_network_params.values(True, True)) + list(
        loss.cost_qvalue_network_params.values(True, True)
    )
    for name in ("loss_objective", "loss_entropy", "loss_cost_objective"):
        value = out[name].sum()
        assert all(
            g is None
            for g in torch.autograd.grad(value, critics, retain_graph=True, allow_unused=True)
        )
        assert any(
            g is not None and g.abs().sum() > 0
            for g in torch.autograd.grad(value, actor, retain_graph=True, allow_unused=True)
        )
    critic_loss = out["loss_qvalue"] + out["loss_cost_qvalue"]
    assert all(
        g is None
        for g in torch.autograd.grad(critic_loss, actor, retain_graph=True, allow_unused=True)
    )
    assert all(
        g is not None
        for g in torch.autograd.grad(critic_loss, critics, retain_graph=True, allow_unused=True)
    )
    (alpha_grad,) = torch.autograd.grad(out["loss_alpha"], [loss.log_alpha])
    # d/d log_alpha of -log_alpha (log pi + H_target) = entropy - H_target, H_target = -dim(A)
    torch.testing.assert_close(alpha_grad, out["entropy"] + ACT)


@pytest.mark.parametrize("cost_nets", [1, 2])
def test_stacked_critics_give_the_losses_and_gradients_of_one_call_per_critic(cost_nets):
    """The critics' batched evaluation (``forward_stacked``) against calling each critic in
    turn: the same losses and the same gradients of every parameter."""
    results = []
    for stacked in (True, False):
        torch.manual_seed(3)  # the twin copies are initialised from the global generator
        loss = make_loss(num_cost_qvalue_nets=cost_nets)
        loss.qvalue_network.module.stackable = stacked
        loss.cost_qvalue_network.module.stackable = stacked
        out = loss(batch())
        total = sum(out[key].sum() for key in ("loss_objective", "loss_entropy", "loss_qvalue"))
        total = total + out["loss_cost_objective"].sum() + out["loss_cost_qvalue"]
        params = [p for p in loss.parameters() if p.requires_grad]
        results.append((out, torch.autograd.grad(total, params, allow_unused=True)))
    (stacked_out, stacked_grads), (looped_out, looped_grads) = results
    for key in looped_out.keys():  # noqa: SIM118 (iterating a TensorDict walks its batch)
        torch.testing.assert_close(stacked_out[key], looped_out[key])
    assert len(stacked_grads) == len(looped_grads)
    for a, b in zip(stacked_grads, looped_grads, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)


def test_one_cost_critic_per_constraint_with_distinct_weights():
    loss = make_loss()
    weights = loss.cost_qvalue_network_params.flatten_keys(".")["module.net.0.weight"]
    assert weights.shape[0] == K and not torch.equal(weights[0], weights[1])
    assert "cost_qvalue" in repr(loss) or "num_constraints=2" in repr(loss)


@pytest.mark.parametrize("nets", [2, 3])
def test_several_cost_critics_use_their_maximum_in_targets_and_actor_loss(nets):
    """num_cost_qvalue_nets=J: member k * J + j is critic j of constraint k; the cost target
    bootstraps max_j Q'_c,k,j, every critic regresses it, and L_c[k] = E[max_j Q_c,k,j]."""
    cost_gamma = 0.8
    loss = make_loss(cost_gamma=cost_gamma, num_cost_qvalue_nets=nets)
    td = batch()
    torch.manual_seed(3)
    out = loss(td.clone())
    torch.manual_seed(3)
    noises = [torch.randn(B, ACT) for _ in range(2)]
    c, c_target = loss.cost_qvalue_network_params, loss.target_cost_qvalue_network_params
    assert c.batch_size[0] == nets * K
    with torch.no_grad():
        obs, act, nxt = td["observation"], td["action"], td["next", "observation"]
        alive = 1.0 - td["next", "terminated"].float().squeeze(-1)
        a1, _ = tanh_gaussian_sample(loss, nxt, noises[0])
        a3, _ = tanh_gaussian_sample(loss, obs, noises[1])
        expected_loss, expected_objective = 0.0, []
        for k in range(K):
            members = range(nets * k, nets * k + nets)
            nxt_sa = torch.cat([nxt, a1], -1)
            nxt_q = torch.stack([mlp(c_target[m], nxt_sa) for m in members]).amax(0)
            y_c = td["next", "cost"][:, k] + cost_gamma * alive * nxt_q
            for m in members:
                expected_loss += ((mlp(c[m], torch.cat([obs, act], -1)) - y_c) ** 2).mean()
            sa = torch.cat([obs, a3], -1)
            expected_objective.append(torch.stack([mlp(c[m], sa) for m in members]).amax(0).mean())
    torch.testing.assert_close(out["loss_cost_qvalue"], expected_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        out["loss_cost_objective"], torch.stack(expected_objective), rtol=1e-5, atol=1e-6
    )
    assert f"num_cost_qvalue_nets={nets}" in repr(loss)


@pytest.mark.parametrize("shift", [-100.0, 100.0])
def test_nonnegative_costs_clamp_the_bootstrapped_cost_value_at_zero(shift):
    """nonnegative_costs=True: y_c = c + gamma_c (1 - terminal) max(Q'_c(s', a'), 0). Target
    cost critics shifted far below 0 bootstrap 0; far above 0 they are unchanged."""
    loss = make_loss(cost_gamma=0.8, nonnegative_costs=True)
    with torch.no_grad():  # the last layer's bias moves every output by `shift`
        flat = loss.target_cost_qvalue_network_params.flatten_keys(".")
        flat["module.net.2.bias"].add_(shift)
    td = batch()
    torch.manual_seed(3)
    clamped_target = loss.targets(td)[1]
    loss.nonnegative_costs = False
    torch.manual_seed(3)
    plain_target = loss.targets(td)[1]
    loss.nonnegative_costs = True
    if shift > 0:
        torch.testing.assert_close(clamped_target, plain_target)
    else:
        torch.testing.assert_close(clamped_target, td["next", "cost"].T)
    td["next", "cost"][0, 1] = -0.5
    with pytest.raises(ValueError, match="nonnegative_costs"):
        loss.targets(td)


def test_wrong_number_of_costs_is_named():
    loss = make_loss()
    td = batch()
    td["next", "cost"] = td["next", "cost"][:, :1]
    with pytest.raises(ValueError, match="num_constraints=2"):
        loss(td)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_constraints": 0}, "num_constraints"),
        ({"gamma": 1.5}, "gamma"),
        ({"alpha_init": 0.0}, "alpha_init"),
        ({"num_cost_qvalue_nets": 0}, "num_cost_qvalue_nets"),
        ({"fixed_alpha": "false"}, "fixed_alpha must be true or false"),
        ({"target_entropy": "foo"}, "target_entropy must be 'auto'"),
        ({"target_entropy": float("inf")}, "target_entropy must be 'auto'"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    nets = make_sac_networks(OBS, ACT, (8,), seed=0)
    with pytest.raises(ValueError, match=match):
        SafeSACLoss(nets.actor, nets.qvalue, nets.cost_qvalue, **kwargs)
