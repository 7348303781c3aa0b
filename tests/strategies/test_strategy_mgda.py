"""MGDA: minimum-norm convex combination (bonus aggregator)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradmanip.strategies import MGDA, MGDACombiner, SoftSwitch
from gradmanip.strategies.mgda import min_norm_weights

vector = st.lists(st.floats(-10, 10, allow_nan=False), min_size=3, max_size=3)


def test_hand_computed_two_task_value():
    update, diagnostics = MGDA().aggregate(
        torch.tensor([1.0, 0.0]), torch.tensor([[-1.0, 1.0]]), torch.tensor([0.0])
    )
    # alpha = (|g_c|^2 - g_r.g_c) / |g_r - g_c|^2 = 3 / 5 -> 0.6 g_r + 0.4 g_c
    torch.testing.assert_close(update, torch.tensor([0.2, 0.4]))
    torch.testing.assert_close(diagnostics["reward_weight"], torch.tensor(0.6, dtype=torch.float64))


@settings(max_examples=60, deadline=None)
@given(vector, vector)
def test_two_task_update_improves_both_objectives(g_r, g_c):
    g_r, g_c = torch.tensor(g_r, dtype=torch.float64), torch.tensor([g_c], dtype=torch.float64)
    update, _ = MGDA().aggregate(g_r, g_c, torch.tensor([0.0]))
    tolerance = 1e-9 * float((g_r.norm() + g_c.norm()) ** 2)
    norm2 = float(update @ update)
    assert float(update @ g_r) >= norm2 - tolerance
    assert float(update @ g_c[0]) >= norm2 - tolerance


@settings(max_examples=25, deadline=None)
@given(st.lists(vector, min_size=3, max_size=3))
def test_frank_wolfe_reaches_the_minimum_norm_on_three_directions(rows):
    directions = torch.tensor(rows, dtype=torch.float64)
    gram = (directions @ directions.T).tolist()
    alpha = min_norm_weights(gram, iterations=2000)
    assert min(alpha) >= 0 and sum(alpha) == pytest.approx(1.0)
    found = float((torch.tensor(alpha, dtype=torch.float64) @ directions).norm())
    steps = torch.linspace(0, 1, 201, dtype=torch.float64)
    a, b = torch.meshgrid(steps, steps, indexing="ij")
    mask = a + b <= 1
    weights = torch.stack([a[mask], b[mask], 1 - a[mask] - b[mask]], dim=1)
    best = float((weights @ directions).norm(dim=1).min())
    scale = float(directions.norm(dim=1).max())
    assert found <= best + 1e-2 * scale


def test_active_subset_and_in_band_use():
    combiner = MGDACombiner()
    gram = [[1.0, -1.0, 0.0], [-1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]
    assert combiner.coefficients(gram, [True, True, False]) == pytest.approx([0.6, 0.4, 0.0])
    strategy = SoftSwitch(cost_limit=1.0, in_band=combiner)
    update, _ = strategy.aggregate(
        torch.tensor([1.0, 0.0]), torch.tensor([[-1.0, 1.0]]), torch.tensor([1.0])
    )
    torch.testing.assert_close(update, torch.tensor([0.2, 0.4]))
    assert repr(MGDA(iterations=5)) == "MGDA(iterations=5)"
    with pytest.raises(ValueError, match="iterations"):
        MGDACombiner(iterations=0)
