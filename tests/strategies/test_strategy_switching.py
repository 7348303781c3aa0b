"""Soft switching with slack (PCRPO) and hard switching (CRPO)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradmanip.strategies import (
    MODE_BOTH,
    MODE_COST_ONLY,
    MODE_REWARD_ONLY,
    HardSwitch,
    PCGrad,
    PCGradCombiner,
    ProjectionCombiner,
    SoftSwitch,
    WeightedSumCombiner,
)

SCALES = (1e-30, 1e-3, 1.0, 1e3, 1e30)
vector = st.lists(st.floats(-10, 10, allow_nan=False), min_size=4, max_size=4)
pairs = st.tuples(vector, vector, st.sampled_from(SCALES))


def _directions(pair, dtype=torch.float64):
    g_r, g_c, scale = pair
    return (
        torch.tensor(g_r, dtype=dtype) * scale,
        torch.tensor([g_c], dtype=dtype) * scale,
    )


def _cost(value: float) -> torch.Tensor:
    return torch.tensor([value], dtype=torch.float64)


@settings(max_examples=80, deadline=None)
@given(pairs)
def test_in_band_projection_never_hurts_either_objective(pair):
    g_r, g_c = _directions(pair)
    update, diagnostics = SoftSwitch(cost_limit=5.0).aggregate(g_r, g_c, _cost(5.0))
    assert int(diagnostics["mode"]) == MODE_BOTH
    tolerance = 1e-9 * float((g_r.norm() + g_c.norm()) ** 2)
    assert update @ g_r >= -tolerance
    assert update @ g_c[0] >= -tolerance
    dot = float(g_r @ g_c[0])
    norms2 = float(g_r @ g_r * (g_c[0] @ g_c[0]))
    if dot < 0 and norms2 > 0:  # update . g_r = x_r |g_r|^2 sin^2(theta)
        sin2 = 1 - dot**2 / norms2
        expected = 0.5 * float(g_r @ g_r) * sin2
        assert math.isclose(float(update @ g_r), expected, rel_tol=1e-6, abs_tol=tolerance)


@settings(max_examples=80, deadline=None)
@given(pairs)
def test_unit_weights_in_band_equal_two_task_pcgrad(pair):
    g_r, g_c = _directions(pair)
    soft = SoftSwitch(cost_limit=5.0, in_band=ProjectionCombiner(1.0, 1.0))
    update, _ = soft.aggregate(g_r, g_c, _cost(5.0))
    reference, _ = PCGrad().aggregate(g_r, g_c, _cost(5.0))
    torch.testing.assert_close(update, reference, rtol=1e-9, atol=1e-12 * float(reference.norm()))
    tolerance = 1e-9 * float((g_r.norm() + g_c.norm()) ** 2)
    assert reference @ g_r >= -tolerance and reference @ g_c[0] >= -tolerance


@settings(max_examples=80, deadline=None)
@given(pairs, st.floats(0, 50, allow_nan=False))
def test_zero_slack_equals_hard_switch_with_zero_tolerance(pair, cost):
    g_r, g_c = _directions(pair)
    if cost == 20.0:  # exactly on the limit the soft rule is in band (strict inequalities)
        cost = 20.5
    soft, _ = SoftSwitch(cost_limit=20.0).aggregate(g_r, g_c, _cost(cost))
    hard, _ = HardSwitch(cost_limit=20.0, tolerance=0.0).aggregate(g_r, g_c, _cost(cost))
    assert torch.equal(soft, hard)


def test_hand_computed_values_in_each_mode():
    g_r, g_c = torch.tensor([1.0, 0.0]), torch.tensor([[-1.0, 1.0]])
    strategy = SoftSwitch(cost_limit=25.0, upper_slack=9.0, lower_slack=-9.0)
    expected = {10.0: [1.0, 0.0], 25.0: [0.25, 0.75], 40.0: [-1.0, 1.0]}
    for cost, values in expected.items():
        update, _ = strategy.aggregate(g_r, g_c, torch.tensor([cost]))
        torch.testing.assert_close(update, torch.tensor(values))


@pytest.mark.parametrize(
    ("cost", "mode"),
    [
        (34.0, MODE_BOTH),  # b + h+ exactly: in band
        (math.nextafter(34.0, math.inf), MODE_COST_ONLY),
        (16.0, MODE_BOTH),  # b + h- exactly: in band
        (math.nextafter(16.0, -math.inf), MODE_REWARD_ONLY),
        (25.0, MODE_BOTH),
        (1e9, MODE_COST_ONLY),
        (-1e9, MODE_REWARD_ONLY),
    ],
)
def test_mode_at_and_around_band_edges(cost, mode):
    strategy = SoftSwitch(cost_limit=25.0, upper_slack=9.0, lower_slack=-9.0)
    g_r, g_c = torch.tensor([1.0, 2.0]), torch.tensor([[3.0, -1.0]])
    update, diagnostics = strategy.aggregate(g_r, g_c, _cost(cost))
    assert int(diagnostics["mode"]) == mode
    if mode == MODE_COST_ONLY:
        assert torch.equal(update, g_c[0])
    if mode == MODE_REWARD_ONLY:
        assert torch.equal(update, g_r)


def test_infinite_slack_never_leaves_the_band():
    strategy = SoftSwitch(cost_limit=1.0, upper_slack=math.inf, lower_slack=-math.inf)
    g_r, g_c = torch.tensor([1.0, 0.0]), torch.tensor([[0.0, 1.0]])
    for cost in (-1e30, 0.0, 1e30):
        _, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([cost]))
        assert int(diagnostics["mode"]) == MODE_BOTH


def test_slack_annealing_shrinks_the_band_and_reset_restores_it():
    strategy = SoftSwitch(cost_limit=10.0, upper_slack=4.0, lower_slack=-2.0, anneal_epochs=4)
    g_r, g_c = torch.tensor([1.0]), torch.tensor([[1.0]])
    _, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([13.5]))
    assert int(diagnostics["mode"]) == MODE_BOTH
    strategy.update_state(torch.tensor([13.5]))
    assert strategy.upper_slack.tolist() == [3.0] and strategy.lower_slack.tolist() == [-1.5]
    _, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([13.5]))
    assert int(diagnostics["mode"]) == MODE_COST_ONLY
    assert "upper_slack" in strategy.state_dict()
    strategy.reset()
    assert strategy.upper_slack.tolist() == [4.0] and strategy.lower_slack.tolist() == [-2.0]


def test_single_epoch_annealing_closes_infinite_band():
    strategy = SoftSwitch(cost_limit=1.0, upper_slack=math.inf, anneal_epochs=1)
    strategy.update_state(torch.tensor([0.0]))
    assert strategy.upper_slack.tolist() == [0.0]


def test_in_band_combiner_swap_is_one_argument():
    g_r, g_c = torch.tensor([1.0, 0.0]), torch.tensor([[-1.0, 1.0]])
    weighted = SoftSwitch(cost_limit=1.0, in_band=WeightedSumCombiner(0.5, 0.5))
    update, _ = weighted.aggregate(g_r, g_c, torch.tensor([1.0]))
    torch.testing.assert_close(update, torch.tensor([0.0, 0.5]))
    by_name = SoftSwitch(cost_limit=1.0, in_band="pcgrad")
    assert isinstance(by_name.in_band, PCGradCombiner)
    with pytest.raises(ValueError, match="in_band must be"):
        SoftSwitch(in_band="magic")


def test_several_constraints_soft_switch():
    g_r = torch.tensor([1.0, 0.0, 0.0])
    g_c = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 1.0]])
    strategy = SoftSwitch(cost_limit=[1.0, 2.0, 3.0], upper_slack=1.0, lower_slack=-1.0)
    # constraint 0 and 1 above their bands, constraint 2 below -> cost only on (g_c0 + g_c1) / 2
    update, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([5.0, 5.0, 0.0]))
    assert int(diagnostics["mode"]) == MODE_COST_ONLY
    torch.testing.assert_close(update, torch.tensor([0.0, 0.5, 0.5]))
    # conflicting violated constraints are projected against each other
    update, _ = strategy.aggregate(g_r, g_c, torch.tensor([5.0, 0.0, 9.0]))
    expected = 0.5 * (torch.tensor([0.0, 0.5, 0.5]) + torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(update, expected)
    assert update @ g_c[0] >= 0 and update @ g_c[2] >= 0
    # all below -> reward only; one in band -> both
    update, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([-1.0, -1.0, -1.0]))
    assert int(diagnostics["mode"]) == MODE_REWARD_ONLY and torch.equal(update, g_r)
    _, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([-1.0, 2.0, -1.0]))
    assert int(diagnostics["mode"]) == MODE_BOTH
    assert diagnostics["cosine"].shape == (3,) and diagnostics["conflict"].tolist() == [False] * 3
    with pytest.raises(ValueError, match="configured for 3"):
        strategy.aggregate(g_r, g_c[:2], torch.tensor([1.0, 1.0]))


def test_in_band_projection_among_all_directions_by_hand():
    # d0 = g_r, d1, d2 = g_c; conflicts d0.d1 = -1 and d1.d2 = -3, d0.d2 = 1. Each direction is
    # projected against the others in index order (onto the normal plane of the original other
    # when the projected one still conflicts with it), then weighted 0.5, 0.25, 0.25:
    #   d0' = (1, 0) + 0.5 (-1, 1) = (0.5, 0.5); (0.5, 0.5).d2 = -0.5 -> + 0.1 d2 = (0.6, 0.3)
    #   d1' = (-1, 1) + d0 = (0, 1); (0, 1).d2 = -2 -> + 0.4 d2 = (0.4, 0.2)
    #   d2' = d2 (no conflict with d0), then + 1.5 d1 = (-0.5, -0.5)
    strategy = SoftSwitch(cost_limit=[10.0, 20.0], upper_slack=1.0, lower_slack=-1.0)
    g_r, g_c = torch.tensor([1.0, 0.0]), torch.tensor([[-1.0, 1.0], [1.0, -2.0]])
    update, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([10.0, 20.0]))
    assert int(diagnostics["mode"]) == MODE_BOTH
    assert diagnostics["conflict"].tolist() == [True, False]
    expected = 0.5 * torch.tensor([0.6, 0.3]) + 0.25 * torch.tensor([0.4, 0.2])
    expected += 0.25 * torch.tensor([-0.5, -0.5])
    torch.testing.assert_close(update, expected)  # (0.275, 0.075)
    # one constraint in its band and the other below it: both, over g_r and the constraint in
    # band only, which receives all of x_c: the two-task projection
    #   g_r' = d0 + 0.5 d1 = (0.5, 0.5), g_c' = d1 + d0 = (0, 1), update = 0.5 g_r' + 0.5 g_c'
    below, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([10.0, 0.0]))
    assert int(diagnostics["mode"]) == MODE_BOTH
    torch.testing.assert_close(below, torch.tensor([0.25, 0.75]))
    # the edge b + h- = 19 itself is in band: the constraint joins again
    on_edge, _ = strategy.aggregate(g_r, g_c, torch.tensor([10.0, 19.0]))
    below_edge, _ = strategy.aggregate(g_r, g_c, torch.tensor([10.0, 18.999999]))
    assert not torch.allclose(on_edge, below_edge)
    torch.testing.assert_close(below_edge, below)


def test_hard_switch_follows_most_violated_constraint():
    g_r = torch.tensor([1.0, 0.0])
    g_c = torch.tensor([[0.0, 1.0], [0.0, -1.0]])
    strategy = HardSwitch(cost_limit=[10.0, 1.0], tolerance=[2.0, 0.0])
    update, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([13.0, 3.0]))
    assert torch.equal(update, g_c[1]) and int(diagnostics["followed_constraint"]) == 1
    update, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([12.0, 1.0]))
    assert torch.equal(update, g_r) and int(diagnostics["mode"]) == MODE_REWARD_ONLY
    assert int(diagnostics["followed_constraint"]) == -1


def test_hard_switch_tolerance_edge():
    strategy = HardSwitch(cost_limit=25.0, tolerance=2.0)
    g_r, g_c = torch.tensor([1.0]), torch.tensor([[-1.0]])
    assert torch.equal(strategy.aggregate(g_r, g_c, torch.tensor([27.0]))[0], g_r)
    assert torch.equal(strategy.aggregate(g_r, g_c, torch.tensor([27.01]))[0], g_c[0])


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: SoftSwitch(upper_slack=-1.0), "upper_slack \\(h\\+\\) must be >= 0"),
        (lambda: SoftSwitch(lower_slack=1.0), "lower_slack \\(h-\\) must be <= 0"),
        (lambda: SoftSwitch(cost_limit=-1.0), "cost_limit must be >= 0"),
        (lambda: SoftSwitch(cost_limit=math.inf), "cost_limit must be finite"),
        (lambda: SoftSwitch(cost_limit=[1.0, 2.0], upper_slack=[1.0]), "one value per"),
        (lambda: SoftSwitch(anneal_epochs=0), "anneal_epochs"),
        (
            lambda: SoftSwitch(cost_limit=[1.0, 2.0], in_band=ProjectionCombiner(0.5, [1, 2, 3])),
            "configured for 3",
        ),
        (lambda: HardSwitch(tolerance=-1.0), "tolerance must be >= 0"),
        (lambda: HardSwitch(cost_limit=[1.0], tolerance=[0.0, 1.0]), "one value per"),
    ],
)
def test_bad_settings_raise_value_error(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_reprs_show_settings():
    soft = SoftSwitch(cost_limit=[1.0, 2.0], upper_slack=0.5, lower_slack=-0.5, anneal_epochs=3)
    assert repr(soft) == (
        "SoftSwitch(cost_limit=[1, 2], upper_slack=0.5, lower_slack=-0.5, "
        "in_band=ProjectionCombiner(reward_weight=0.5, cost_weight=0.5), anneal_epochs=3)"
    )
    assert repr(HardSwitch(2.0, 0.5)) == "HardSwitch(cost_limit=2, tolerance=0.5)"


def test_in_band_weights_by_name():
    g_r = torch.tensor([1.0, 0.0], dtype=torch.float64)
    g_c = torch.tensor([[0.0, 1.0]], dtype=torch.float64)  # no conflict: plain weighted sum
    band = _cost(5.0)
    for in_band in ("projection", "weighted_sum"):
        strategy = SoftSwitch(cost_limit=5.0, in_band=in_band, reward_weight=0.7, cost_weight=0.3)
        update, _ = strategy.aggregate(g_r, g_c, band)
        assert torch.allclose(update, torch.tensor([0.7, 0.3], dtype=torch.float64))
    with pytest.raises(ValueError, match="reward_weight/cost_weight"):
        SoftSwitch(in_band="mgda", reward_weight=0.7)
