"""The off-policy loop: warm-up, update-to-data ratio, the episode window's J_c_hat, the replay
buffer's contents, and an exact continuation from a state dict (replay buffer included)."""

from __future__ import annotations

import functools
import io

import gymnasium
import pytest
import torch
from tensordict import TensorDict

import safe_envs
from gradmanip.algos import SAC
from gradmanip.rl.episode_window import EpisodeWindow
from gradmanip.rl.off_policy_trainer import OffPolicyTrainer
from gradmanip.rl.replay import buffer_state, load_buffer_state, make_replay_buffer
from gradmanip.rl.sac_models import make_sac_networks
from gradmanip.strategies import make_strategy

TASK = "SafetyPointVelocity-v0"
safe_envs.task_entry(TASK)  # registers the tasks


def make_trainer(
    warmup: int = 100, ratio: float = 0.25, seed: int = 0, steps_per_epoch: int = 200, **kwargs
):
    torch.manual_seed(seed)
    nets = make_sac_networks(1, 1, (8,), seed=seed)
    algo = SAC(nets, make_strategy("lagrangian", cost_limit=5.0))
    return OffPolicyTrainer(
        functools.partial(gymnasium.make, TASK),
        algo,
        nets.actor,
        make_replay_buffer(1000, 16),
        steps_per_epoch=steps_per_epoch,
        warmup_steps=warmup,
        updates_per_step=ratio,
        cost_window=3,
        seed=seed,
        **kwargs,
    )


def test_warm_up_then_updates_at_the_ratio():
    trainer = make_trainer(warmup=100, ratio=0.25)
    first = trainer.run_epoch()
    assert first["updates"] == 25  # 100 steps after the warm-up, one update every fourth
    second = trainer.run_epoch()
    assert second["updates"] == 50
    assert trainer.frames == 400 and len(trainer.replay_buffer) == 400
    actions = trainer.replay_buffer.storage._storage["action"][:100]
    assert actions.min() >= -1 and actions.max() <= 1 and actions.std() > 0.4  # uniform warm-up
    assert first["episodes"] == 2 and first["episode_length"] == 100


def test_no_update_during_the_warm_up():
    trainer = make_trainer(warmup=200)
    metrics = trainer.run_epoch()
    assert metrics["updates"] == 0 and "loss/reward" not in metrics
    assert trainer.algo.updates_done == 0


def test_transitions_are_stored_with_their_cost_and_the_next_observation():
    trainer = make_trainer(warmup=200)
    trainer.run_epoch()
    storage = trainer.replay_buffer.storage._storage
    obs, following = storage["observation"][:200], storage["next", "observation"][:200]
    truncated = storage["next", "truncated"][:200].squeeze(-1)
    assert torch.equal(obs[1:][~truncated[:-1]], following[:-1][~truncated[:-1]])
    speed = following.squeeze(-1)
    assert torch.equal(storage["next", "cost"][:200].squeeze(-1), (speed > 0.5).float())
    torch.testing.assert_close(storage["next", "reward"][:200].squeeze(-1), speed)
    assert truncated.nonzero().squeeze(-1).tolist() == [99, 199]  # 100-step episodes
    assert not storage["next", "terminated"][:200].any()


@pytest.mark.parametrize("per_epoch", [200, 150])  # 150: the checkpoint falls mid-episode
def test_state_dict_continues_exactly(per_epoch):
    whole = make_trainer(steps_per_epoch=per_epoch)
    whole.run_epoch()
    saved = io.BytesIO()
    torch.save(whole.state_dict(), saved)  # as a checkpoint does: no tensor shared with `whole`
    saved.seek(0)
    state = torch.load(saved, weights_only=False)
    a = whole.run_epoch()  # before the second trainer touches torch's global RNG
    resumed = make_trainer(warmup=50, steps_per_epoch=per_epoch)  # all replaced by the state
    resumed.train(2)
    resumed.load_state_dict(state)
    assert len(resumed.replay_buffer) == per_epoch
    b = resumed.run_epoch()
    assert {k: v for k, v in a.items() if not k.startswith("time/")} == {
        k: v for k, v in b.items() if not k.startswith("time/")
    }
    stored = whole.replay_buffer.storage._storage[: 2 * per_epoch]
    assert (resumed.replay_buffer.storage._storage[: 2 * per_epoch] == stored).all()
    fresh = make_trainer(steps_per_epoch=per_epoch)  # a new process's: no buffer allocated yet
    fresh.load_state_dict(torch.load(io.BytesIO(saved.getvalue()), weights_only=False))
    c = fresh.run_epoch()
    assert {k: v for k, v in a.items() if not k.startswith("time/")} == {
        k: v for k, v in c.items() if not k.startswith("time/")
    }


def test_episodes_run_across_epochs():
    trainer = make_trainer(warmup=1000, steps_per_epoch=150)  # 100-step episodes
    first, second = trainer.train(2)
    assert (first["episodes"], second["episodes"]) == (1, 2)  # ended at steps 100, 200, 300
    assert second["episode_length"] == 100
    truncated = trainer.replay_buffer.storage._storage["next", "truncated"][:300].squeeze(-1)
    assert truncated.nonzero().squeeze(-1).tolist() == [99, 199, 299]  # no cut at step 150


def test_a_task_without_readable_state_starts_every_epoch_afresh(monkeypatch):
    monkeypatch.delattr(safe_envs.toy.PointVelocityEnv, "get_state")
    trainer = make_trainer(warmup=1000, steps_per_epoch=150)
    first, second = trainer.train(2)
    assert (first["episodes"], second["episodes"]) == (1, 1)  # the rest of each epoch is cut
    truncated = trainer.replay_buffer.storage._storage["next", "truncated"][:300].squeeze(-1)
    assert truncated.nonzero().squeeze(-1).tolist() == [99, 249]
    assert trainer.state_dict()["running_episode"] is None


def test_episode_window_mean_of_the_last_episodes():
    window = EpisodeWindow(window=2, num_constraints=2, initial_episode_cost=1.5)
    assert window.episode_cost.tolist() == [1.5, 1.5]
    assert window.episode_cost.dtype == torch.float64
    for ret, cost in ((1.0, [10.0, 0.0]), (2.0, [20.0, 2.0]), (3.0, [30.0, 4.0])):
        window.add(ret, cost, 100)
    assert window.episode_cost.tolist() == [25.0, 3.0]
    summary = window.summary()
    assert summary["episode_return"] == 2.5
    # one column per constraint, and their sum under the plain name (as on-policy)
    assert (summary["episode_cost_0"], summary["episode_cost_1"]) == (25.0, 3.0)
    assert summary["episode_cost"] == 28.0
    with pytest.raises(ValueError, match="expected 2"):
        window.add(0.0, [1.0], 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 10, "batch_size": 11}, "batch_size"),
        ({"capacity": 0, "batch_size": 1}, "capacity"),
        ({"capacity": 10, "batch_size": 2, "sampler": "prioritized"}, "sampler"),
    ],
)
def test_replay_buffer_settings_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_replay_buffer(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"ratio": 0.0}, "updates_per_step"), ({"warmup": -1}, "warmup_steps")],
)
def test_trainer_settings_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_trainer(**kwargs)


def transitions(n: int, start: float = 0.0) -> TensorDict:
    return TensorDict(
        {"x": torch.arange(n, dtype=torch.float32) + start, "next": {"y": torch.arange(n) + start}},
        [n],
    )


def test_buffer_state_holds_only_the_filled_rows_and_restores_the_capacity():
    buffer = make_replay_buffer(1000, 4)
    buffer.extend(transitions(10))
    state = buffer_state(buffer)
    rows = state["_storage"]["_storage"]["x"]
    assert rows.shape[0] == 10
    assert rows.data_ptr() == buffer.storage._storage["x"].data_ptr()  # a view, not a copy
    saved = io.BytesIO()
    torch.save(state, saved)
    assert len(saved.getvalue()) < 10_000  # not the 1,000-row storage
    saved.seek(0)
    used = make_replay_buffer(1000, 4)
    used.extend(transitions(500, start=-1000.0))
    for target in (make_replay_buffer(1000, 4), used):  # a fresh buffer and a used one
        load_buffer_state(target, torch.load(saved, weights_only=False))
        saved.seek(0)
        assert len(target) == 10
        target.extend(transitions(995, start=100.0))  # wraps around the full capacity
        assert len(target) == 1000
        x = target.storage._storage["x"]
        assert x[:5].tolist() == [1090.0, 1091.0, 1092.0, 1093.0, 1094.0]  # after the wrap
        assert x[5:10].tolist() == [5.0, 6.0, 7.0, 8.0, 9.0]  # the restored rows
        assert x[10].item() == 100.0
        assert torch.equal(target.storage._storage["next", "y"][5:11], x[5:11].long())


def test_two_constraints_read_from_the_task_info():
    torch.manual_seed(0)
    nets = make_sac_networks(11, 3, (8,), seed=0)
    band = {"cost_limit": [25.0, 200.0], "upper_slack": 0.0, "lower_slack": [-9.0, -67.0]}
    algo = SAC(nets, make_strategy("soft_switch", **band), num_constraints=2)
    trainer = OffPolicyTrainer(
        functools.partial(gymnasium.make, "SafetyHopperVelocityEffort-v1"),
        algo,
        nets.actor,
        make_replay_buffer(1000, 16),
        steps_per_epoch=100,
        warmup_steps=80,
        num_constraints=2,
    )
    metrics = trainer.run_epoch()
    trainer.shutdown()
    costs = trainer.replay_buffer.storage._storage["next", "cost"][:100]
    assert costs.shape == (100, 2) and costs[:, 1].sum() > 0  # the effort cost, per step
    assert not torch.equal(costs[:, 0], costs[:, 1])
    assert metrics["updates"] == 20
    for name in ("loss/cost", "cost_q_value", "episode_cost", "strategy/cosine"):
        assert {f"{name}_0", f"{name}_1"} <= set(metrics), name
        assert f"{name}_2" not in metrics
    assert "loss/cost" not in metrics and "strategy/cosine" not in metrics  # per constraint only
    assert metrics["episode_cost"] == metrics["episode_cost_0"] + metrics["episode_cost_1"]
