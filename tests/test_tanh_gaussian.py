"""The actor's draws on plain tensors equal the TensorDict actor's, bit for bit: actions,
log-probabilities, gradients and the random numbers consumed; other layouts are refused."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDict
from tensordict.nn import NormalParamExtractor, TensorDictModule, TensorDictSequential
from torch import nn
from torchrl.envs.utils import ExplorationType, set_exploration_type
from torchrl.modules import ProbabilisticActor, TanhNormal

from gradmanip.rl.sac_models import make_sac_networks
from gradmanip.tanh_gaussian import TanhGaussianSampler, sampler_or_none

OBS, ACT = 5, 3


def actor(seed: int = 0) -> ProbabilisticActor:
    # an asymmetric box, so that the scaling after the tanh is part of the check
    return make_sac_networks(
        OBS, ACT, (16, 16), action_low=[-1.0, -2.0, 0.0], action_high=[1.0, 0.5, 3.0], seed=seed
    ).actor


def td_draw(policy: ProbabilisticActor, observation: torch.Tensor):
    batch = observation.shape[:-1]
    with set_exploration_type(ExplorationType.RANDOM):
        out = policy(TensorDict({"observation": observation}, batch_size=batch))
    return out.get("action"), out.get("action_log_prob")


@pytest.mark.parametrize("batch", [(), (7,), (2, 4)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_draws_equal_the_actor_bit_for_bit(batch, seed):
    policy = actor(seed)
    sampler = TanhGaussianSampler(policy)
    observation = torch.randn(*batch, OBS, generator=torch.Generator().manual_seed(seed)) * 3
    torch.manual_seed(seed)
    expected = [td_draw(policy, observation) for _ in range(3)]
    expected_state = torch.get_rng_state()
    torch.manual_seed(seed)
    drawn = [sampler.rsample(observation) for _ in range(3)]
    assert torch.equal(torch.get_rng_state(), expected_state)  # the same random numbers used
    for (action, log_prob), (want_action, want_log_prob) in zip(drawn, expected, strict=True):
        assert action.shape == (*batch, ACT) and log_prob.shape == batch
        assert torch.equal(action, want_action)
        assert torch.equal(log_prob, want_log_prob)
    torch.manual_seed(seed)
    acted = sampler.act(observation)
    assert not acted.requires_grad
    assert torch.equal(acted, expected[0][0])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    exponent=st.integers(-6, 4),
    batch=st.integers(1, 9),
    shift=st.floats(-5.0, 5.0),
)
def test_draws_equal_the_actor_at_any_scale(seed, exponent, batch, shift):
    """Observations from 1e-6 to 1e4 in size and weights shifted so that the tanh saturates:
    still the same draws (NaN where the actor gives NaN)."""
    policy = actor(seed % 1000)
    with torch.no_grad():
        policy.module[0].module[0][-1].bias.add_(shift)
    g = torch.Generator().manual_seed(seed)
    observation = torch.randn(batch, OBS, generator=g) * 10.0**exponent
    torch.manual_seed(seed)
    want_action, want_log_prob = td_draw(policy, observation)
    torch.manual_seed(seed)
    action, log_prob = TanhGaussianSampler(policy).rsample(observation)
    for got, want in ((action, want_action), (log_prob, want_log_prob)):
        torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)


def test_gradients_equal_the_distribution_of_the_actor():
    policy = actor()
    sampler = TanhGaussianSampler(policy)
    observation = torch.randn(32, OBS)
    params = list(policy.parameters())

    def grads(draw):
        torch.manual_seed(5)
        action, log_prob = draw()
        return torch.autograd.grad((action.square().sum(-1) + log_prob).mean(), params)

    def through_actor():
        with set_exploration_type(ExplorationType.RANDOM):
            dist = policy.get_dist(TensorDict({"observation": observation}, batch_size=[32]))
        return dist.rsample_and_log_prob()

    expected = grads(through_actor)
    for got, want in zip(grads(lambda: sampler.rsample(observation)), expected, strict=True):
        assert torch.equal(got, want)


def test_the_sampler_follows_the_actors_parameters():
    policy = actor()
    sampler = TanhGaussianSampler(policy)
    observation = torch.randn(4, OBS)
    torch.manual_seed(0)
    before = sampler.act(observation)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.5)
    torch.manual_seed(0)
    after = sampler.act(observation)
    torch.manual_seed(0)
    assert not torch.equal(before, after)
    assert torch.equal(after, td_draw(policy, observation)[0])


def test_other_layouts_are_refused_with_a_reason():
    with pytest.raises(TypeError, match="two layers"):
        TanhGaussianSampler(nn.Linear(2, 2))
    assert sampler_or_none(nn.Linear(2, 2)) is None
    # a network of several TensorDict modules: drawn through the actor instead
    net = TensorDictModule(nn.Linear(OBS, 2 * ACT), in_keys=["observation"], out_keys=["raw"])
    split = TensorDictModule(NormalParamExtractor(), in_keys=["raw"], out_keys=["loc", "scale"])
    layered = ProbabilisticActor(
        TensorDictSequential(net, split), in_keys=["loc", "scale"], distribution_class=TanhNormal
    )
    assert sampler_or_none(layered) is None
    template = actor()
    safe = ProbabilisticActor(
        template.module[0],
        in_keys=["loc", "scale"],
        out_keys=["action"],
        spec=template.spec["action"],
        safe=True,
        distribution_class=TanhNormal,
    )
    with pytest.raises(ValueError, match="safe=True"):
        TanhGaussianSampler(safe)
    assert sampler_or_none(safe) is None
    seeded = ProbabilisticActor(
        template.module[0],
        in_keys=["loc", "scale"],
        distribution_class=TanhNormal,
        generator=torch.Generator().manual_seed(0),
    )
    with pytest.raises(ValueError, match="generator"):
        TanhGaussianSampler(seeded)
    assert "TanhNormal" in repr(TanhGaussianSampler(template))
