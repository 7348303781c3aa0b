"""Episode statistics across batch and environment boundaries, and the J_c_hat estimate."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tensordict import TensorDict

from gradmanip.rl.episodes import EpisodeTracker


def make_batch(reward, cost, done):
    """reward/done [E, T], cost [E, T, K] -> batch [E, T] with the collector's layout."""
    return TensorDict(
        {
            "next": {
                "reward": reward.unsqueeze(-1).float(),
                "cost": cost.float(),
                "done": done.unsqueeze(-1),
            }
        },
        batch_size=reward.shape,
    )


def reference_episodes(reward, cost, done):
    """Plain loops over each env's whole stream: finished episodes in (env, time) order."""
    episodes = []
    for e in range(reward.shape[0]):
        ret, cst, length = 0.0, torch.zeros(cost.shape[-1], dtype=torch.float64), 0
        for t in range(reward.shape[1]):
            ret += float(reward[e, t])
            cst += cost[e, t].double()
            length += 1
            if done[e, t]:
                episodes.append((e, t, ret, cst.clone(), length))
                ret, cst, length = 0.0, torch.zeros_like(cst), 0
    return episodes


def test_episode_spanning_two_batches_is_counted_once_with_its_full_sums():
    tracker = EpisodeTracker()
    reward = torch.tensor([[1.0, 2.0, 3.0]])
    cost = torch.tensor([[[1.0], [0.0], [1.0]]])
    first = tracker.update(make_batch(reward, cost, torch.tensor([[False, False, False]])))
    assert first.num_episodes == 0
    second = tracker.update(make_batch(reward, cost, torch.tensor([[False, True, False]])))
    assert second.returns.tolist() == [1 + 2 + 3 + 1 + 2]
    assert second.costs.tolist() == [[1 + 0 + 1 + 1 + 0]]
    assert second.lengths.tolist() == [5]
    third = tracker.update(make_batch(reward, cost, torch.tensor([[True, False, False]])))
    assert third.returns.tolist() == [3 + 1] and third.lengths.tolist() == [2]


def test_estimate_is_mean_of_latest_batch_and_kept_when_none_finished():
    tracker = EpisodeTracker(initial_episode_cost=-1.0)
    assert tracker.episode_cost.tolist() == [-1.0]
    reward = torch.zeros(2, 4)
    cost = torch.ones(2, 4, 1)
    done = torch.tensor([[False, True, False, True], [False, False, False, True]])
    stats = tracker.update(make_batch(reward, cost, done))
    # env 0: episodes of 2 and 2 steps; env 1: one of 4 -> mean cost (2 + 2 + 4) / 3.
    assert stats.episode_cost.tolist() == pytest.approx([8 / 3])
    stats = tracker.update(make_batch(reward, cost, torch.zeros(2, 4, dtype=torch.bool)))
    assert stats.num_episodes == 0
    assert stats.episode_cost.tolist() == pytest.approx([8 / 3])
    summary = stats.summary()
    assert summary["episodes"] == 0 and summary["episode_cost"] == pytest.approx(8 / 3)
    assert summary["episode_return"] != summary["episode_return"]  # NaN: nothing finished


@settings(max_examples=60, deadline=None)
@given(
    num_envs=st.integers(1, 3),
    cuts=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    num_constraints=st.integers(1, 2),
    seed=st.integers(0, 10_000),
)
def test_matches_plain_loop_for_any_split_into_batches(num_envs, cuts, num_constraints, seed):
    generator = torch.Generator().manual_seed(seed)
    total = sum(cuts)
    reward = torch.randn(num_envs, total, generator=generator)
    cost = torch.rand(num_envs, total, num_constraints, generator=generator).round()
    done = torch.rand(num_envs, total, generator=generator) < 0.3
    tracker = EpisodeTracker(num_constraints=num_constraints)
    got_returns, got_costs, got_lengths = [], [], []
    start = 0
    for cut in cuts:
        part = slice(start, start + cut)
        stats = tracker.update(make_batch(reward[:, part], cost[:, part], done[:, part]))
        # within a batch, episodes come in (env, time) order; regroup by finishing time
        got_returns.append(stats.returns)
        got_costs.append(stats.costs)
        got_lengths.append(stats.lengths)
        start += cut
    expected = reference_episodes(reward, cost, done)
    # Order per batch is (env, time): sort the reference the same way inside each batch.
    bounds = torch.tensor(cuts).cumsum(0).tolist()
    batch_of = lambda t: next(i for i, b in enumerate(bounds) if t < b)  # noqa: E731
    expected.sort(key=lambda ep: (batch_of(ep[1]), ep[0], ep[1]))
    returns = torch.cat(got_returns)
    assert returns.shape[0] == len(expected)
    if expected:
        torch.testing.assert_close(
            returns, torch.tensor([ep[2] for ep in expected], dtype=torch.float64)
        )
        torch.testing.assert_close(torch.cat(got_costs), torch.stack([ep[3] for ep in expected]))
        assert torch.cat(got_lengths).tolist() == [ep[4] for ep in expected]


def test_windowed_estimate_averages_the_last_episodes_across_batches():
    """cost_window=3: J_c_hat is the mean of the last three finished episodes, whichever batch
    they finished in; the episode_cost column stays the batch's own mean."""
    tracker = EpisodeTracker(num_constraints=2, cost_window=3, carry_over=False)
    # batch 1: one env, episodes ending at t = 1 and t = 3; per-step costs [1, 0] then [0, 2]
    cost = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 2.0]]])
    done = torch.tensor([[False, True, False, True]])
    stats = tracker.update(make_batch(torch.zeros(1, 4), cost, done))
    assert stats.episode_cost.tolist() == pytest.approx([1.0, 2.0])  # episodes [2, 0], [0, 4]
    # batch 2: two envs, each one episode of per-step cost [3, 3] (lengths 1 and 2)
    cost = torch.full((2, 2, 2), 3.0)
    done = torch.tensor([[True, False], [False, True]])
    stats = tracker.update(make_batch(torch.zeros(2, 2), cost, done))
    # window: [0, 4], [3, 3], [6, 6]  (the oldest, [2, 0], fell out)
    assert stats.episode_cost.tolist() == pytest.approx([3.0, 13 / 3])
    summary = stats.summary()
    assert summary["episode_cost_0"] == pytest.approx(4.5)  # this batch's episodes only
    assert summary["episode_cost_1"] == pytest.approx(4.5)
    assert summary["cost_estimate_0"] == pytest.approx(3.0)
    assert summary["cost_estimate"] == pytest.approx(3.0 + 13 / 3)
    # no episode finishes: the estimate is kept, and so is the window
    stats = tracker.update(
        make_batch(torch.zeros(1, 2), torch.ones(1, 2, 2), torch.zeros(1, 2, dtype=torch.bool))
    )
    assert stats.episode_cost.tolist() == pytest.approx([3.0, 13 / 3])
    assert stats.summary()["episode_cost_0"] == pytest.approx(3.0)


@settings(max_examples=40, deadline=None)
@given(
    window=st.integers(1, 5),
    cuts=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    seed=st.integers(0, 10_000),
)
def test_windowed_estimate_matches_the_plain_loop(window, cuts, seed):
    generator = torch.Generator().manual_seed(seed)
    total = sum(cuts)
    cost = torch.rand(2, total, 1, generator=generator).round()
    done = torch.rand(2, total, generator=generator) < 0.4
    tracker = EpisodeTracker(cost_window=window, initial_episode_cost=-1.0)
    finished: list[float] = []
    start = 0
    for cut in cuts:
        part = slice(start, start + cut)
        stats = tracker.update(make_batch(torch.zeros(2, cut), cost[:, part], done[:, part]))
        finished += stats.costs[:, 0].tolist()
        expected = sum(finished[-window:]) / len(finished[-window:]) if finished else -1.0
        assert stats.episode_cost.tolist() == pytest.approx([expected])
        start += cut


def test_windowed_state_dict_round_trip_keeps_the_window():
    tracker = EpisodeTracker(cost_window=2, carry_over=False)
    one_episode = torch.tensor([[False, True]])
    tracker.update(make_batch(torch.zeros(1, 2), torch.full((1, 2, 1), 5.0), one_episode))
    restored = EpisodeTracker(cost_window=2, carry_over=False)
    restored.load_state_dict(tracker.state_dict())
    batch = make_batch(torch.zeros(1, 2), torch.ones(1, 2, 1), one_episode)
    assert restored.update(batch).episode_cost.tolist() == [6.0]  # mean of 10 and 2
    assert tracker.update(batch).episode_cost.tolist() == [6.0]
    old_format = {k: v for k, v in tracker.state_dict().items() if k != "recent_costs"}
    restored.load_state_dict(old_format)  # a checkpoint written without a window
    assert restored.update(batch).episode_cost.tolist() == [2.0]


@pytest.mark.parametrize("window", [0, -3, 2.5, True, "10"])
def test_bad_cost_window_is_rejected(window):
    with pytest.raises(ValueError, match="cost_window must be None"):
        EpisodeTracker(cost_window=window)


def test_state_dict_round_trip_carries_partial_episodes():
    tracker = EpisodeTracker()
    reward, cost = torch.ones(1, 3), torch.ones(1, 3, 1)
    tracker.update(make_batch(reward, cost, torch.zeros(1, 3, dtype=torch.bool)))
    restored = EpisodeTracker()
    restored.load_state_dict(tracker.state_dict())
    finish = torch.tensor([[False, False, True]])
    assert restored.update(make_batch(reward, cost, finish)).returns.tolist() == [6.0]
    assert tracker.update(make_batch(reward, cost, finish)).returns.tolist() == [6.0]


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="num_constraints"):
        EpisodeTracker(num_constraints=0)
    tracker = EpisodeTracker(num_constraints=2)
    batch = make_batch(torch.zeros(1, 3), torch.zeros(1, 3, 1), torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_constraints=2"):
        tracker.update(batch)
    del batch["next", "cost"]
    with pytest.raises(KeyError, match="cost"):
        tracker.update(batch)


def test_summary_names_each_constraint_and_the_total():
    # one env, 4 steps, episodes end at t = 1 and t = 3; costs per step [speed, effort]
    cost = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [1.0, 3.0]]])
    done = torch.tensor([[False, True, False, True]])
    tracker = EpisodeTracker(num_constraints=2)
    stats = tracker.update(make_batch(torch.ones(1, 4), cost, done))
    assert stats.costs.tolist() == [[1.0, 2.0], [2.0, 4.0]]
    summary = stats.summary()
    assert (summary["episode_cost_0"], summary["episode_cost_1"]) == (1.5, 3.0)
    assert summary["episode_cost"] == 4.5  # the total over the constraints
    one = EpisodeTracker().update(make_batch(torch.ones(1, 4), cost[..., :1], done)).summary()
    assert one["episode_cost"] == 1.5 and "episode_cost_0" not in one


def test_metric_names_of_per_constraint_quantities():
    from gradmanip.rl.metric_names import constraint_columns

    assert constraint_columns("loss/cost", [0.5]) == {"loss/cost": 0.5}
    assert constraint_columns("loss/cost", [0.5, 2.0]) == {"loss/cost_0": 0.5, "loss/cost_1": 2.0}
    assert list(constraint_columns("episode_cost", [1.0, 2.0], total=True).items()) == [
        ("episode_cost", 3.0),
        ("episode_cost_0", 1.0),
        ("episode_cost_1", 2.0),
    ]
    assert constraint_columns("episode_cost", [4.0], total=True) == {"episode_cost": 4.0}
    with pytest.raises(ValueError, match="no values"):
        constraint_columns("episode_cost", [])


def test_cost_critic_has_one_output_per_constraint():
    from gradmanip.rl.models import make_actor_critic

    nets = make_actor_critic(3, 2, hidden=[8], num_costs=3)
    assert nets.num_costs == 3
    assert nets.cost_critic(TensorDict(observation=torch.zeros(5, 3)))["cost_value"].shape == (5, 3)
    assert make_actor_critic(3, 2, hidden=[8]).num_costs == 1
    with pytest.raises(ValueError, match="num_outputs"):
        make_actor_critic(3, 2, num_costs=0)
