"""TorchRL entry point: keys, shapes, dtypes, batched copies, observation normalisation, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDict
from torchrl.envs import ParallelEnv, SerialEnv
from torchrl.envs.utils import step_mdp

import safe_envs
from safe_envs import RunningObsNorm, make_env

HOPPER = "SafetyHopperVelocity-v1"


def fixed_actions(env, steps: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (steps, *env.action_spec.shape)
    return torch.rand(shape, generator=generator) * 2 - 1


def play(env, action_seq: torch.Tensor) -> TensorDict:
    """Roll out ``action_seq`` (time first) with TorchRL's step_mdp bookkeeping."""
    td = env.reset()
    out = []
    for action in action_seq:
        td["action"] = action
        td = env.step(td)
        out.append(td.clone())
        td = step_mdp(td)
    return torch.stack(out)


@pytest.mark.parametrize("env_id", [HOPPER, "SafetyHopper-v4"])
def test_single_env_keys_shapes_dtypes(env_id):
    env = make_env(env_id, seed=0)
    td = env.rollout(6)
    assert env.batch_size == torch.Size([])
    assert td["observation"].dtype == torch.float32 and td["observation"].shape == (6, 11)
    assert td["action"].shape == (6, 3)
    reward, cost = td["next", "reward"], td["next", "cost"]
    assert reward.shape == cost.shape == (6, 1)
    assert reward.dtype == cost.dtype == torch.float32
    for key in ("done", "terminated", "truncated"):
        assert td["next", key].shape == (6, 1) and td["next", key].dtype == torch.bool
    assert (cost >= 0).all()
    env.close()


def test_costs_come_from_gymnasium_info():
    import gymnasium

    env = make_env("SafetyHopper-v4", seed=3)
    seq = fixed_actions(env, 5)
    td = play(env, seq)
    gym_env = gymnasium.make("SafetyHopper-v4")
    gym_env.reset(seed=3)  # what TorchRL's set_seed does; the rollout's reset follows it
    obs, _ = gym_env.reset()
    np.testing.assert_allclose(td["observation"][0].numpy(), obs, rtol=1e-6)
    for t, action in enumerate(seq):
        obs, reward, *_, info = gym_env.step(action.numpy())
        assert td["next", "cost"][t].item() == pytest.approx(info["cost"], rel=1e-6)
        assert td["next", "reward"][t].item() == pytest.approx(reward, rel=1e-6)
    env.close()


def test_task_parameters_pass_through():
    env = make_env(HOPPER, seed=0, velocity_threshold=0.0, max_episode_steps=4)
    td = env.rollout(10, break_when_any_done=True)
    assert td.shape == (4,) and td["next", "truncated"][-1].item()
    env.close()


def test_batched_copies_match_single_copies():
    steps, num_envs = 5, 3
    batched = make_env(HOPPER, num_envs=num_envs, seed=10)
    assert isinstance(batched, SerialEnv) and batched.batch_size == (num_envs,)
    seq = fixed_actions(batched, steps)
    td = play(batched, seq)
    assert td["next", "cost"].shape == td["next", "reward"].shape == (steps, num_envs, 1)
    for i in range(num_envs):
        single = make_env(HOPPER, seed=10 + i)
        ref = play(single, seq[:, i])
        torch.testing.assert_close(td["observation"][:, i], ref["observation"])
        torch.testing.assert_close(td["next", "reward"][:, i], ref["next", "reward"])
        torch.testing.assert_close(td["next", "cost"][:, i], ref["next", "cost"])
        single.close()
    batched.close()


@pytest.mark.slow
def test_parallel_copies():
    """Worker processes start with a fresh interpreter: several seconds on a small machine."""
    env = make_env("SafetySwimmerVelocity-v1", num_envs=2, seed=0, parallel=True)
    try:
        assert isinstance(env, ParallelEnv)
        td = env.rollout(3)
        assert td["next", "cost"].shape == (2, 3, 1) and td["observation"].dtype == torch.float32
    finally:
        env.close()


def test_observation_normalisation_statistics_are_exact_running_moments():
    raw_env = make_env(HOPPER, seed=4)
    norm_env = make_env(HOPPER, seed=4, normalize_obs=True)
    seq = fixed_actions(raw_env, 8)
    raw = play(raw_env, seq)
    normed = play(norm_env, seq)
    norm: RunningObsNorm = norm_env.transform
    seen = torch.cat([raw["observation"][:1], raw["next", "observation"]]).double()
    assert norm.count.item() == len(seen)
    torch.testing.assert_close(norm.mean, seen.mean(0))
    torch.testing.assert_close(norm.std, seen.std(0, unbiased=False))
    last = norm.normalize(raw["next", "observation"][-1])
    torch.testing.assert_close(normed["next", "observation"][-1], last)
    assert normed["next", "observation"].abs().max() <= 5.0
    raw_env.close()
    norm_env.close()


def test_normalisation_state_dict_and_freeze():
    train = make_env(HOPPER, seed=1, normalize_obs=True)
    train.rollout(6)
    stats = train.transform.state_dict()
    assert set(stats) == {"count", "mean", "sum_sq_dev", "std"}
    evaluation = make_env(HOPPER, seed=2, normalize_obs=True)
    norm = evaluation.transform
    norm.load_state_dict(stats)
    norm.freeze()
    evaluation.rollout(5)
    for key, value in stats.items():
        torch.testing.assert_close(norm.state_dict()[key], value)
    norm.unfreeze()
    evaluation.rollout(2)
    assert norm.count.item() == stats["count"].item() + 3
    train.close()
    evaluation.close()


def test_normalisation_clips_at_5_and_starts_as_identity():
    norm = RunningObsNorm(shape=(2,))
    obs = torch.tensor([100.0, -3.0])
    assert torch.equal(norm.normalize(obs), torch.tensor([5.0, -3.0]))
    assert "clip=5.0" in repr(norm)
    with pytest.raises(ValueError, match="clip"):
        RunningObsNorm(shape=(2,), clip=0.0)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=3),
        min_size=1,
        max_size=20,
    ),
    st.integers(1, 7),
)
def test_running_moments_do_not_depend_on_batching(rows, chunk):
    data = torch.tensor(rows, dtype=torch.float64)
    norm = RunningObsNorm(shape=(3,))
    for start in range(0, len(data), chunk):
        norm.update(data[start : start + chunk])
    torch.testing.assert_close(norm.mean, data.mean(0), atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(norm.std, data.std(0, unbiased=False), atol=1e-6, rtol=1e-6)


def test_unknown_id_lists_available_ids():
    with pytest.raises(safe_envs.UnknownTaskError) as err:
        make_env("SafetyRocket-v1")
    for env_id in safe_envs.available_ids():
        assert env_id in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_envs": 0}, "num_envs"),
        ({"seed": 1.5}, "seed"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
        ({"velocity_threshold": -1.0}, "velocity_threshold"),
        ({"no_such_parameter": 1}, "no_such_parameter"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_env(HOPPER, **kwargs)


def test_partial_reset_updates_statistics_with_reset_copies_only():
    """A batched partial reset returns placeholder rows for the other copies: not counted."""
    mask = TensorDict({"_reset": torch.tensor([[True], [False], [False]])}, batch_size=[3])
    seen = []
    for normalize in (False, True):
        env = make_env(HOPPER, num_envs=3, seed=5, normalize_obs=normalize)
        td = env.reset()
        td["action"] = torch.full((3, 3), 0.5)
        td = env.step(td)
        after = env.reset(mask.clone())
        if not normalize:
            seen = [td["observation"], td["next", "observation"], after["observation"][:1]]
        else:
            norm = env.transform
        env.close()
    seen = torch.cat(seen).double()
    assert norm.count.item() == 7 == len(seen)
    torch.testing.assert_close(norm.mean, seen.mean(0))
    torch.testing.assert_close(norm.std, seen.std(0, unbiased=False))
