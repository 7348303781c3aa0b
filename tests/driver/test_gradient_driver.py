"""GradientDriver: flat per-objective gradients, .grad writing, non-finite handling."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import nn

from gradmanip.driver.flat import ParameterLayout, flat_params, set_flat_params, unflatten
from gradmanip.driver.gradient_driver import GradientDriver
from gradmanip.strategies import make_strategy


def _network(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3))


def _losses(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = net(x)
    reward_loss = -(out[:, 0] * out[:, 1]).mean()
    cost_losses = torch.stack([out[:, 2].pow(2).mean(), (out[:, 0] - out[:, 2]).mean()])
    return reward_loss, cost_losses


def _reference_grads(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Flat gradient of each loss, each from its own forward pass."""
    grads = []
    for index in range(3):
        net.zero_grad()
        reward_loss, cost_losses = _losses(net, x)
        loss = reward_loss if index == 0 else cost_losses[index - 1]
        loss.backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
    net.zero_grad(set_to_none=True)
    return grads


def test_directions_are_negated_gradients_of_each_loss():
    net, x = _network(), torch.randn(16, 3)
    reference = _reference_grads(net, x)
    driver = GradientDriver(net.parameters(), make_strategy("reward_only"))
    g_r, g_c = driver.directions(*_losses(net, x))
    torch.testing.assert_close(g_r, -reference[0])
    torch.testing.assert_close(g_c, -torch.stack(reference[1:]))
    assert g_c.shape == (2, driver.numel)


def test_step_writes_negated_strategy_combination_into_grad():
    net, x = _network(), torch.randn(16, 3)
    g = [-grad for grad in _reference_grads(net, x)]
    strategy = make_strategy("lagrangian", cost_limit=[0.0, 0.0], multiplier_init=[0.5, 2.0])
    driver = GradientDriver(net.parameters(), strategy)
    result = driver.step(*_losses(net, x), episode_cost=torch.tensor([1.0, 1.0]))
    expected_update = (g[0] + 0.5 * g[1] + 2.0 * g[2]) / 3.5
    torch.testing.assert_close(result.update, expected_update)
    written = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    torch.testing.assert_close(written, -expected_update)
    assert not result.skipped and result.nonfinite == []


def test_optimizer_steps_along_the_update():
    net, x = _network(), torch.randn(16, 3)
    before = flat_params(net.parameters())
    driver = GradientDriver(net.parameters(), make_strategy("soft_switch", cost_limit=10.0))
    result = driver.step(*_losses(net, x), episode_cost=torch.tensor([0.0, 0.0]))
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    torch.testing.assert_close(flat_params(net.parameters()) - before, 0.1 * result.update)


def test_soft_switch_step_in_band_matches_projection_formula():
    net, x = _network(1), torch.randn(32, 3)
    out = net(x)
    reward_loss, cost_loss = -out[:, 0].mean(), out[:, 0].mean() + out[:, 1].mean()
    driver = GradientDriver(net.parameters(), make_strategy("soft_switch", cost_limit=1.0))
    g_r, g_c = (t.clone() for t in driver.directions(reward_loss, cost_loss, retain_graph=True))
    result = driver.step(reward_loss, [cost_loss], torch.tensor([1.0]))
    dot = g_r @ g_c[0]
    assert dot < 0, "the test losses are built to conflict"
    expected = 0.5 * (g_r - dot / g_c[0].dot(g_c[0]) * g_c[0]) + 0.5 * (
        g_c[0] - dot / g_r.dot(g_r) * g_r
    )
    torch.testing.assert_close(result.update, expected)


def test_shared_forward_is_not_repeated():
    net, x = _network(), torch.randn(16, 3)
    calls = []
    net.register_forward_hook(lambda *_: calls.append(1))
    driver = GradientDriver(net.parameters(), make_strategy("soft_switch", cost_limit=1.0))
    driver.step(*_losses(net, x), episode_cost=torch.tensor([1.0, 1.0]))
    assert len(calls) == 1


def test_grad_views_survive_zero_grad_set_to_none():
    net, x = _network(), torch.randn(16, 3)
    driver = GradientDriver(net.parameters(), make_strategy("reward_only"))
    optimizer = torch.optim.Adam(net.parameters())
    for _ in range(2):
        result = driver.step(*_losses(net, x), episode_cost=torch.tensor([0.0, 0.0]))
        written = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
        torch.testing.assert_close(written, -result.update)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def test_unused_parameters_get_zero_direction():
    net = _network()
    extra = nn.Parameter(torch.ones(2))
    x = torch.randn(4, 3)
    driver = GradientDriver([*net.parameters(), extra], make_strategy("reward_only"))
    g_r, g_c = driver.directions(*_losses(net, x))
    assert (g_r[-2:] == 0).all() and (g_c[:, -2:] == 0).all()


def _nan_losses(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    out = net(x)
    return -out[:, 0].mean(), [out[:, 1].mean(), out[:, 2].mean() * float("nan")]


def test_nonfinite_direction_raises_naming_the_objective():
    net, x = _network(), torch.randn(4, 3)
    driver = GradientDriver(net.parameters(), make_strategy("reward_only"))
    with pytest.raises(FloatingPointError, match=r"cost\[1\]"):
        driver.step(*_nan_losses(net, x), episode_cost=torch.tensor([0.0, 0.0]))
    assert all(p.grad is None for p in net.parameters())


def test_nonfinite_direction_skip_leaves_grad_untouched():
    net, x = _network(), torch.randn(4, 3)
    driver = GradientDriver(net.parameters(), make_strategy("reward_only"), on_nonfinite="skip")
    result = driver.step(*_nan_losses(net, x), episode_cost=torch.tensor([0.0, 0.0]))
    assert result.skipped and result.update is None and result.nonfinite == ["cost[1]"]
    assert all(p.grad is None for p in net.parameters())
    good = driver.step(*_losses(net, x), episode_cost=torch.tensor([0.0, 0.0]))
    before = [p.grad.clone() for p in net.parameters()]
    skipped = driver.step(*_nan_losses(net, x), episode_cost=torch.tensor([0.0, 0.0]))
    assert skipped.skipped and not good.skipped
    for param, grad in zip(net.parameters(), before, strict=True):
        assert torch.equal(param.grad, grad)


def test_works_with_probabilistic_actor_parameters():
    from torchrl.modules import ProbabilisticActor, TanhNormal

    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 4), NormalParamExtractor())
    module = TensorDictModule(backbone, in_keys=["observation"], out_keys=["loc", "scale"])
    actor = ProbabilisticActor(
        module,
        in_keys=["loc", "scale"],
        distribution_class=TanhNormal,
        return_log_prob=True,
    )
    td = TensorDict({"observation": torch.randn(8, 4)}, batch_size=[8])
    action = actor(td.clone())["action"].detach()
    dist = actor.get_dist(td)
    log_prob = dist.log_prob(action)
    advantages = torch.randn(2, 8)
    reward_loss = -(log_prob * advantages[0]).mean()
    cost_loss = (log_prob * advantages[1]).mean()
    driver = GradientDriver(actor.parameters(), make_strategy("soft_switch", cost_limit=1.0))
    result = driver.step(reward_loss, cost_loss, torch.tensor([5.0]))
    assert int(result.diagnostics["mode"]) == 2  # cost only: update = g_c
    torch.testing.assert_close(result.update, result.cost_direction[0])
    for param in actor.parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all()


def test_flat_param_helpers_round_trip():
    net = _network()
    params = list(net.parameters())
    flat = flat_params(params)
    assert flat.shape == (sum(p.numel() for p in params),)
    views = unflatten(flat, params)
    assert [v.shape for v in views] == [p.shape for p in params]
    set_flat_params(params, torch.zeros_like(flat))
    assert all((p == 0).all() for p in params)
    set_flat_params(params, flat)
    torch.testing.assert_close(flat_params(params), flat)
    layout = ParameterLayout(params)
    assert layout.numel == flat.numel() and "numel" in repr(layout)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"params": []}, ValueError, "params is empty"),
        ({"on_nonfinite": "ignore"}, ValueError, "on_nonfinite"),
        ({"strategy": object()}, TypeError, "strategy"),
    ],
)
def test_constructor_validation(kwargs, error, match):
    settings = {"params": _network().parameters(), "strategy": make_strategy("reward_only")}
    settings.update(kwargs)
    with pytest.raises(error, match=match):
        GradientDriver(**settings)


def test_bad_losses_are_rejected():
    net, x = _network(), torch.randn(4, 3)
    driver = GradientDriver(net.parameters(), make_strategy("reward_only"))
    reward_loss, cost_losses = _losses(net, x)
    with pytest.raises(ValueError, match="reward_loss must be a scalar"):
        driver.directions(net(x), cost_losses)
    with pytest.raises(ValueError, match="does not require grad"):
        driver.directions(reward_loss, torch.tensor(1.0))
    with pytest.raises(ValueError, match="cost_losses is empty"):
        driver.directions(reward_loss, [])
    with pytest.raises(ValueError, match="update must have shape"):
        driver.apply(torch.zeros(3))


def test_nonfinite_update_from_a_strategy_is_named_update():
    from gradmanip.strategies import Strategy

    class Exploding(Strategy):
        name = "exploding"

        def _aggregate(self, g_r, g_c, episode_cost):
            return g_r * float("inf"), {}

    net, x = _network(), torch.randn(4, 3)
    driver = GradientDriver(net.parameters(), Exploding())
    with pytest.raises(FloatingPointError, match="update"):
        driver.step(*_losses(net, x), episode_cost=torch.tensor([0.0, 0.0]))
    assert all(p.grad is None for p in net.parameters())


def test_repr_and_numel():
    driver = GradientDriver(_network().parameters(), make_strategy("reward_only"))
    assert driver.numel == 3 * 8 + 8 + 8 * 3 + 3
    assert repr(driver) == "GradientDriver(numel=59, strategy=RewardOnly(), on_nonfinite='raise')"


def test_huge_finite_directions_are_not_mistaken_for_nonfinite():
    weight = nn.Parameter(torch.ones(4))
    driver = GradientDriver([weight], make_strategy("reward_only"))
    reward_loss = -(weight * 3e38).sum()  # entries finite, their sum overflows float32
    cost_loss = weight.sum()
    result = driver.step(reward_loss, cost_loss, torch.tensor([0.0]))
    assert not result.skipped
    torch.testing.assert_close(weight.grad, torch.full((4,), -3e38))


def test_directions_leave_existing_grads_untouched():
    net, x = _network(), torch.randn(16, 3)
    for param in net.parameters():
        param.grad = torch.full_like(param, 7.0)
    before = [param.grad for param in net.parameters()]
    driver = GradientDriver(net.parameters(), make_strategy("reward_only"))
    driver.directions(*_losses(net, x))
    for param, grad in zip(net.parameters(), before, strict=True):
        assert param.grad is grad and (grad == 7.0).all()


class _NormalisedSum:
    """Mixin body of a non-linear strategy (exercises the driver's generic path)."""

    name = "normalised_sum"

    def _aggregate(self, g_r, g_c, episode_cost):
        update = g_r / g_r.norm() + (g_c / g_c.norm(dim=1, keepdim=True)).sum(0)
        return update, {"mode": torch.tensor(0)}


def _nonlinear_strategy():
    from gradmanip.strategies import Strategy

    return type("NormalisedSum", (_NormalisedSum, Strategy), {})()


@pytest.fixture(params=["mixed", "all_large", "all_small"])
def in_place_numel(request, monkeypatch):
    """Drivers built under this fixture split the test network's parameters into large ones
    (handled in place) and small ones (copied into a block) in three ways."""
    value = {"mixed": 20, "all_large": 1, "all_small": 1 << 30}[request.param]
    monkeypatch.setattr("gradmanip.driver.gradient_driver.IN_PLACE_NUMEL", value)
    return value


@pytest.mark.parametrize(
    ("name", "settings", "episode_cost"),
    [
        ("soft_switch", {"cost_limit": 1.0}, [1.0, 1.0]),  # in band: projection on conflict
        ("soft_switch", {"cost_limit": 1.0}, [5.0, 0.0]),  # cost only
        ("soft_switch", {"cost_limit": 1.0}, [0.0, 0.0]),  # reward only
        ("pcgrad", {}, [0.0, 0.0]),
        ("lagrangian", {"multiplier_init": [0.5, 2.0]}, [0.0, 0.0]),
        ("weighted_sum", {"reward_weight": 0.2, "cost_weight": [0.3, 0.5]}, [0.0, 0.0]),
        ("hard_switch", {"cost_limit": 1.0}, [5.0, 0.0]),
        ("mgda", {}, [0.0, 0.0]),
        ("normalised_sum", {}, [0.0, 0.0]),  # not linear: aggregate path
    ],
)
def test_step_matches_the_strategy_aggregate(name, settings, episode_cost, in_place_numel):
    def build():
        return (
            _nonlinear_strategy() if name == "normalised_sum" else make_strategy(name, **settings)
        )

    net, x = _network(2), torch.randn(16, 3)
    driver = GradientDriver(net.parameters(), build())
    g_r, g_c = (t.clone() for t in driver.directions(*_losses(net, x)))
    cost = torch.tensor(episode_cost)
    expected, expected_diagnostics = build().aggregate(g_r, g_c, cost)
    result = driver.step(*_losses(net, x), episode_cost=cost)
    assert driver.strategy.is_linear == (name != "normalised_sum")
    assert (result.coefficients is None) == (name == "normalised_sum")
    torch.testing.assert_close(result.update, expected)
    torch.testing.assert_close(result.reward_direction, g_r)
    torch.testing.assert_close(result.cost_direction, g_c)
    assert result.update_norm == pytest.approx(float(expected.norm()), rel=1e-5)
    assert result.diagnostics.keys() == expected_diagnostics.keys()
    for key, value in expected_diagnostics.items():
        torch.testing.assert_close(result.diagnostics[key], value)
    written = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    assert torch.equal(written, -result.update)  # bit for bit: .grad holds exactly -update


def test_a_result_keeps_its_own_tensors_after_later_steps(in_place_numel):
    net, x = _network(), torch.randn(16, 3)
    driver = GradientDriver(net.parameters(), make_strategy("soft_switch", cost_limit=1.0))
    first = driver.step(*_losses(net, x), episode_cost=torch.tensor([1.0, 1.0]))
    expected = [-p.grad.reshape(-1).clone() for p in net.parameters()]
    driver.step(*_losses(net, 3 * x), episode_cost=torch.tensor([1.0, 1.0]))
    assert torch.equal(first.update, torch.cat(expected))
    second = driver.step(*_losses(net, 3 * x), episode_cost=torch.tensor([1.0, 1.0]))
    assert not torch.equal(first.reward_direction, second.reward_direction)


@pytest.mark.parametrize("name", ["soft_switch", "normalised_sum"])
def test_max_norm_scales_the_update_like_clip_grad_norm(name, in_place_numel):
    net, x = _network(), torch.randn(16, 3)
    strategy = _nonlinear_strategy() if name == "normalised_sum" else make_strategy(name)
    driver = GradientDriver(net.parameters(), strategy)
    free = driver.step(*_losses(net, x), episode_cost=torch.tensor([0.0, 0.0]))
    norm = float(free.update.norm())
    assert free.clip_factor == 1.0 and free.update_norm == pytest.approx(norm, rel=1e-5)
    unclipped = [p.grad.clone() for p in net.parameters()]
    clipped = driver.step(*_losses(net, x), torch.tensor([0.0, 0.0]), max_norm=0.25 * norm)
    total = float(torch.cat([grad.reshape(-1) for grad in unclipped]).norm())
    scale = min(1.0, 0.25 * norm / (total + 1e-6))  # the clip_grad_norm_ rule
    for param, want in zip(net.parameters(), unclipped, strict=True):
        torch.testing.assert_close(param.grad, scale * want)
    assert clipped.update_norm == pytest.approx(0.25 * norm, rel=1e-4)
    assert clipped.clip_factor == pytest.approx(0.25, rel=1e-4)
    roomy = driver.step(*_losses(net, x), torch.tensor([0.0, 0.0]), max_norm=10 * norm)
    assert roomy.clip_factor == 1.0
    with pytest.raises(ValueError, match="max_norm"):
        driver.step(*_losses(net, x), torch.tensor([0.0, 0.0]), max_norm=0.0)


def test_coefficients_reproduce_aggregate():
    from gradmanip.strategies.gram import combine, direction_gram

    torch.manual_seed(3)
    g_r, g_c = torch.randn(9, dtype=torch.float64), torch.randn(2, 9, dtype=torch.float64)
    cost = torch.tensor([1.0, 1.0], dtype=torch.float64)
    strategy = make_strategy("soft_switch", cost_limit=1.0)
    coefficients, diagnostics = strategy.coefficients(direction_gram(g_r, g_c), cost)
    update, expected = strategy.aggregate(g_r, g_c, cost)
    torch.testing.assert_close(combine(g_r, g_c, coefficients), update)
    assert diagnostics.keys() == expected.keys()
    with pytest.raises(ValueError, match="gram must be a 3 x 3"):
        strategy.coefficients(direction_gram(g_r, g_c[:1]), cost)
    with pytest.raises(ValueError, match="episode_cost"):
        strategy.coefficients(direction_gram(g_r, g_c), torch.tensor([1, 1]))
    with pytest.raises(TypeError, match="not a linear strategy"):
        _nonlinear_strategy().coefficients(direction_gram(g_r, g_c), cost)


class _InfiniteCoefficients:
    """Mixin: a linear strategy whose coefficients overflow the update."""

    def _coefficients(self, gram, episode_cost):
        return [float("inf")] + [0.0] * (len(gram) - 1), {}


@pytest.mark.parametrize("on_nonfinite", ["raise", "skip"])
def test_nonfinite_linear_update_leaves_grad_untouched(on_nonfinite, in_place_numel):
    from gradmanip.strategies.weighted_sum import RewardOnly

    class Overflowing(_InfiniteCoefficients, RewardOnly):
        pass

    net, x = _network(), torch.randn(4, 3)
    good = GradientDriver(net.parameters(), make_strategy("reward_only"))
    good.step(*_losses(net, x), episode_cost=torch.tensor([0.0, 0.0]))
    before = [p.grad.clone() for p in net.parameters()]
    driver = GradientDriver(net.parameters(), Overflowing(), on_nonfinite=on_nonfinite)
    if on_nonfinite == "raise":
        with pytest.raises(FloatingPointError, match="update"):
            driver.step(*_losses(net, x), episode_cost=torch.tensor([0.0, 0.0]))
    else:
        result = driver.step(*_losses(net, x), episode_cost=torch.tensor([0.0, 0.0]))
        assert result.skipped and result.nonfinite == ["update"] and result.update is None
    for param, grad in zip(net.parameters(), before, strict=True):
        assert torch.equal(param.grad, grad)


def test_tiny_directions_use_a_rescaled_gram():
    weight = nn.Parameter(torch.ones(3, dtype=torch.float64))
    driver = GradientDriver([weight], make_strategy("soft_switch", cost_limit=1.0))
    reward_loss = -(weight * torch.tensor([1e-170, 0.0, 0.0], dtype=torch.float64)).sum()
    cost_loss = (weight * torch.tensor([1e-170, 1e-170, 0.0], dtype=torch.float64)).sum()
    result = driver.step(reward_loss, cost_loss, torch.tensor([1.0]))
    g_r = torch.tensor([1e-170, 0.0, 0.0], dtype=torch.float64)
    g_c = -torch.tensor([1e-170, 1e-170, 0.0], dtype=torch.float64)
    # conflict (cosine -1/sqrt(2)) although every squared norm underflows to 0
    assert bool(result.diagnostics["conflict"][0])
    expected = 0.5 * (g_r - (-0.5) * g_c) + 0.5 * (g_c - (-1.0) * g_r)
    torch.testing.assert_close(result.update, expected, rtol=1e-6, atol=0)


def test_episode_cost_is_checked_when_the_number_of_constraints_changes():
    net, x = _network(), torch.randn(8, 3)
    driver = GradientDriver(net.parameters(), make_strategy("soft_switch", cost_limit=1.0))
    driver.step(*_losses(net, x), episode_cost=torch.tensor([1.0, 1.0]))
    reward_loss, cost_losses = _losses(net, x)
    with pytest.raises(ValueError, match="episode_cost"):
        driver.step(reward_loss, cost_losses[0], episode_cost=torch.tensor([1.0, 1.0]))


def test_public_autograd_fallback_gives_the_same_directions():
    net, x = _network(), torch.randn(16, 3)
    fast = GradientDriver(net.parameters(), make_strategy("reward_only"))
    public = GradientDriver(net.parameters(), make_strategy("reward_only"))
    public._engine = None  # as for parameters that override torch functions
    expected = [t.clone() for t in fast.directions(*_losses(net, x))]
    for got, want in zip(public.directions(*_losses(net, x)), expected, strict=True):
        assert torch.equal(got, want)
