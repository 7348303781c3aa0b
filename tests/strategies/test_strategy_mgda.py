"""MGDA: the exact minimum-norm convex combination of the directions."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradmanip.strategies import MGDA, MGDACombiner, SoftSwitch
from gradmanip.strategies.mgda import MAX_DIRECTIONS, min_norm_weights

vector = st.lists(st.floats(-10, 10, allow_nan=False), min_size=3, max_size=3)


def test_hand_computed_two_task_value():
    update, diagnostics = MGDA().aggregate(
        torch.tensor([1.0, 0.0]), torch.tensor([[-1.0, 1.0]]), torch.tensor([0.0])
    )
    # alpha = (|g_c|^2 - g_r.g_c) / |g_r - g_c|^2 = 3 / 5 -> 0.6 g_r + 0.4 g_c
    torch.testing.assert_close(update, torch.tensor([0.2, 0.4]))
    torch.testing.assert_close(diagnostics["reward_weight"], torch.tensor(0.6, dtype=torch.float64))


def test_hand_computed_three_directions():
    # e1, e2 and (1, 1): the min-norm point of the triangle is (1/2, 1/2) on the edge e1-e2
    gram = [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 2.0]]
    assert min_norm_weights(gram) == pytest.approx([0.5, 0.5, 0.0], abs=1e-15)
    # (1, 0), (-1, 1) and (-1, -1): 0 lies inside the triangle -> u = 0 exactly
    directions = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    alpha = torch.tensor(min_norm_weights((directions @ directions.T).tolist()))
    assert alpha.tolist() == pytest.approx([0.5, 0.25, 0.25], abs=1e-15)
    assert float((alpha.double() @ directions).norm()) <= 1e-15


def _directions(data: st.DataObject) -> torch.Tensor:
    """1 + K in {3, 4, 5} directions in 1..6 dimensions, magnitudes over 1e-6..1e6, with
    duplicates, opposite pairs, zero rows and convex combinations that put 0 in the hull."""
    count = data.draw(st.integers(3, 5))
    size = data.draw(st.integers(1, 6))
    rows = data.draw(
        st.lists(
            st.lists(st.floats(-1, 1, allow_nan=False), min_size=size, max_size=size),
            min_size=count,
            max_size=count,
        )
    )
    directions = torch.tensor(rows, dtype=torch.float64)
    scales = data.draw(st.lists(st.integers(-6, 6), min_size=count, max_size=count))
    directions = directions * torch.tensor([10.0**s for s in scales], dtype=torch.float64)[:, None]
    twist = data.draw(st.sampled_from(["none", "duplicate", "opposite", "zero", "zero_in_hull"]))
    if twist == "duplicate":
        directions[1] = directions[0]
    elif twist == "opposite":
        directions[1] = -3.0 * directions[0]
    elif twist == "zero":
        directions[0] = 0.0
    elif twist == "zero_in_hull":
        directions[2] = -(0.25 * directions[0] + 0.5 * directions[1])
    return directions


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_update_improves_every_direction_and_vanishes_without_common_ascent(data):
    directions = _directions(data)
    gram = (directions @ directions.T).tolist()
    alpha = torch.tensor(min_norm_weights(gram), dtype=torch.float64)
    assert float(alpha.min()) >= 0 and float(alpha.sum()) == pytest.approx(1.0, abs=1e-12)
    update = alpha @ directions
    scale = float(directions.square().sum(1).max())
    norm2 = float(update @ update)
    # the MGDA promise: u . d_i >= |u|^2 for every direction
    assert float((directions @ update).min()) >= norm2 - 1e-10 * scale
    # no point of the hull is shorter (a random sample of convex weights)
    samples = torch.distributions.Dirichlet(torch.ones(len(gram), dtype=torch.float64)).sample(
        (200,)
    )
    shortest = float((samples @ directions).square().sum(1).min())
    assert norm2 <= shortest + 1e-10 * scale
    # 0 in the convex hull (no common improvement direction) -> u = 0
    if _zero_in_hull(directions):
        assert norm2 <= 1e-12 * scale  # zero, to the rounding of the Gram matrix


def _zero_in_hull(directions: torch.Tensor) -> bool:
    """Whether 0 is a convex combination by construction (zero row, opposite pair, mix)."""
    rows = directions.tolist()
    if any(all(v == 0 for v in row) for row in rows):
        return True
    if rows[1] == [-3.0 * v for v in rows[0]]:
        return True
    mix = [-(0.25 * a + 0.5 * b) for a, b in zip(rows[0], rows[1], strict=True)]
    return rows[2] == mix


@settings(max_examples=60, deadline=None)
@given(vector, vector)
def test_two_task_update_improves_both_objectives(g_r, g_c):
    g_r, g_c = torch.tensor(g_r, dtype=torch.float64), torch.tensor([g_c], dtype=torch.float64)
    update, _ = MGDA().aggregate(g_r, g_c, torch.tensor([0.0]))
    tolerance = 1e-9 * float((g_r.norm() + g_c.norm()) ** 2)
    norm2 = float(update @ update)
    assert float(update @ g_r) >= norm2 - tolerance
    assert float(update @ g_c[0]) >= norm2 - tolerance


def test_too_many_directions_is_refused():
    gram = torch.eye(MAX_DIRECTIONS + 1).tolist()
    with pytest.raises(ValueError, match=f"at most {MAX_DIRECTIONS} directions"):
        min_norm_weights(gram)
    assert min_norm_weights(torch.eye(4).tolist()) == pytest.approx([0.25] * 4)


def test_active_subset_and_in_band_use():
    combiner = MGDACombiner()
    gram = [[1.0, -1.0, 0.0], [-1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]
    assert combiner.coefficients(gram, [True, True, False]) == pytest.approx([0.6, 0.4, 0.0])
    strategy = SoftSwitch(cost_limit=1.0, in_band=combiner)
    update, _ = strategy.aggregate(
        torch.tensor([1.0, 0.0]), torch.tensor([[-1.0, 1.0]]), torch.tensor([1.0])
    )
    torch.testing.assert_close(update, torch.tensor([0.2, 0.4]))
    assert repr(MGDA()) == "MGDA()"
