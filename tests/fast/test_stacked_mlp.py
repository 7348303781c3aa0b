"""An MLP ensemble by batched products equals its members called one by one (values and
gradients), and critics that are not plain MLPs take the member-by-member path."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torch.func import functional_call, stack_module_state

from gradmanip.fast.stacked_mlp import is_plain_mlp, stacked_mlp
from gradmanip.objectives.safe_sac_loss import ensemble
from gradmanip.rl.sac_models import StateAction


def members(n: int, widths: list[int], seed: int) -> tuple[nn.Sequential, dict]:
    torch.manual_seed(seed)
    nets = []
    for _ in range(n):
        layers: list[nn.Module] = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        nets.append(nn.Sequential(*layers))
    params, _ = stack_module_state(nets)
    return nets[0], params


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 4),
    widths=st.lists(st.integers(1, 9), min_size=2, max_size=4),
    batch=st.integers(1, 7),
    seed=st.integers(0, 1000),
)
def test_values_and_gradients_equal_the_members_one_by_one(n, widths, batch, seed):
    template, params = members(n, widths, seed)
    x = torch.randn(batch, widths[0], requires_grad=True)
    fast = stacked_mlp(template, params, x, prefix="")
    slow = torch.stack(
        [functional_call(template, {k: v[i] for k, v in params.items()}, (x,)) for i in range(n)]
    )
    assert fast.shape == (n, batch, widths[-1])
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    weights = torch.randn_like(fast)
    inputs = [x, *params.values()]
    fast_grads = torch.autograd.grad((fast * weights).sum(), inputs)
    slow_grads = torch.autograd.grad((slow * weights).sum(), inputs)
    for a, b in zip(fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_plain_mlp_detection():
    assert is_plain_mlp(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)))
    assert not is_plain_mlp(nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 1)))
    assert not is_plain_mlp(nn.Sequential(nn.Linear(3, 4, bias=False)))
    assert not is_plain_mlp(nn.Sequential(nn.ReLU()))
    assert not is_plain_mlp(nn.Linear(3, 4))


@pytest.mark.parametrize("norm", [False, True])
def test_ensemble_of_a_critic_module_takes_the_right_path(norm):
    """The loss's ensemble gives the members' values whether the critic is stackable (a plain
    MLP) or not (a LayerNorm inside: the member-by-member path)."""
    hidden = [nn.Linear(5, 6), nn.LayerNorm(6) if norm else nn.Tanh(), nn.Linear(6, 1)]
    critic = TensorDictModule(
        StateAction(nn.Sequential(*hidden)), ["observation", "action"], ["value"]
    )
    assert critic.module.stackable is not norm
    torch.manual_seed(0)
    params = TensorDict.from_module(critic).expand(3).clone()
    params.apply_(lambda t: t.add_(torch.randn_like(t)))
    td = TensorDict({"observation": torch.randn(4, 3), "action": torch.randn(4, 2)}, [4])
    out = ensemble(critic, params, td)
    assert out.shape == (3, 4, 1)
    for i in range(3):
        with params[i].to_module(critic):
            torch.testing.assert_close(out[i], critic(td.clone())["value"], rtol=1e-5, atol=1e-6)
