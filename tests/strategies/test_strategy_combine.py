"""Combiners: projection (PCRPO), PCGrad, weighted sum, in coefficient space."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradmanip.strategies import PCGradCombiner, ProjectionCombiner, WeightedSumCombiner
from gradmanip.strategies.combiners import fixed_order, projection_matrix, random_order
from gradmanip.strategies.gram import combine, conflicts, cosines, direction_gram, stacked


def _stack_gram(directions: torch.Tensor) -> list[list[float]]:
    return direction_gram(directions[0], directions[1:])


def _apply(coefficients: list[float], directions: torch.Tensor) -> torch.Tensor:
    return torch.tensor(coefficients, dtype=directions.dtype) @ directions


def naive_pcgrad(directions: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Projected directions [M, P] by the textbook loop on vectors (Yu et al. 2020, Alg. 1)."""
    projected = []
    for i in range(directions.shape[0]):
        current = directions[i].clone()
        for j in order[i]:
            other = directions[j]
            dot = current @ other
            if dot < 0 and other @ other > 0:
                current = current - dot / (other @ other) * other
        projected.append(current)
    return torch.stack(projected)


def test_projection_hand_computed_two_task():
    g_r, g_c = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    gram = _stack_gram(torch.stack([g_r, g_c]))
    coefficients = ProjectionCombiner(0.5, 0.5).coefficients(gram)
    # g_r' = (0.5, 0.5), g_c' = (0, 1) -> 0.5 g_r' + 0.5 g_c' = (0.25, 0.75)
    update = coefficients[0] * g_r + coefficients[1] * g_c
    torch.testing.assert_close(update, torch.tensor([0.25, 0.75]))
    assert conflicts(gram) == [True]
    assert cosines(gram) == pytest.approx([-(0.5**0.5)])


def test_projection_without_conflict_is_weighted_sum():
    gram = _stack_gram(torch.tensor([[1.0, 2.0], [3.0, 0.5]]))
    coefficients = ProjectionCombiner(0.3, 0.7).coefficients(gram)
    assert coefficients == pytest.approx([0.3, 0.7])
    assert conflicts(gram) == [False]


def test_projection_onto_zero_vector_is_identity():
    gram = _stack_gram(torch.tensor([[1.0, -2.0], [0.0, 0.0]]))
    assert ProjectionCombiner(0.5, 0.5).coefficients(gram) == [0.5, 0.5]
    assert cosines(gram) == [0.0]


vectors = st.lists(st.floats(-10, 10, allow_nan=False, width=64), min_size=3, max_size=3)


@settings(max_examples=60, deadline=None)
@given(st.lists(vectors, min_size=2, max_size=4), st.integers(0, 2**16))
def test_projection_matrix_matches_textbook_loop(rows, seed):
    directions = torch.tensor(rows, dtype=torch.float64)
    gram = (directions @ directions.T).tolist()
    for order in (
        fixed_order(len(rows)),
        random_order(len(rows), torch.Generator().manual_seed(seed)),
    ):
        expected = naive_pcgrad(directions, order)
        actual = torch.tensor(projection_matrix(gram, order), dtype=torch.float64) @ directions
        torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-9)


def test_random_order_is_a_permutation_of_the_others_and_seedable():
    first = random_order(5, torch.Generator().manual_seed(3))
    second = random_order(5, torch.Generator().manual_seed(3))
    assert first == second
    for i, row in enumerate(first):
        assert sorted(row) == [j for j in range(5) if j != i]


def test_pcgrad_combiner_state_dict_restores_generator():
    combiner = PCGradCombiner(seed=1)
    directions = torch.randn(4, 6, dtype=torch.float64)
    gram = (directions @ directions.T).tolist()
    combiner.coefficients(gram)
    state = combiner.state_dict()
    expected = [combiner.coefficients(gram) for _ in range(5)]
    restored = PCGradCombiner(seed=99)
    restored.load_state_dict(state)
    assert [restored.coefficients(gram) for _ in range(5)] == expected
    restored.reset()
    assert restored.generator.initial_seed() == 1


def test_active_mask_drops_directions():
    directions = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]])
    gram = (directions @ directions.T).tolist()
    coefficients = WeightedSumCombiner(1.0, 1.0).coefficients(gram, [True, False, True])
    assert coefficients == [1.0, 0.0, 1.0]  # the scalar cost weight goes to the active constraint
    assert WeightedSumCombiner(1.0, 1.0).coefficients(gram) == [1.0, 0.5, 0.5]
    coefficients = WeightedSumCombiner(1.0, [1.0, 1.0]).coefficients(gram, [True, False, True])
    assert coefficients == [1.0, 0.0, 1.0]
    matrix = projection_matrix(gram, fixed_order(3), [False, True, True])
    assert matrix[0] == [0.0, 0.0, 0.0]
    # g_c1 . g_c2 = -1 < 0: g_c1' = g_c1 - (-1/1) g_c2 = (-1, 0)
    torch.testing.assert_close(_apply(matrix[1], directions), torch.tensor([-1.0, 0.0]))


def test_gram_rescales_extreme_directions():
    for scale in (1e-30, 1e30):
        directions = torch.tensor([[1.0, 0.0], [-1.0, 1.0]]) * scale
        gram = _stack_gram(directions)
        assert all(math.isfinite(v) for row in gram for v in row) and gram[0][1] < 0
        coefficients = ProjectionCombiner(0.5, 0.5).coefficients(gram)
        assert coefficients == pytest.approx([1.0, 0.75])  # update (0.25, 0.75) * scale


def test_combine_exact_and_stacked_paths():
    buffer = torch.randn(3, 5)
    g_r, g_c = buffer[0], buffer[1:]
    assert stacked(g_r, g_c) is not None and stacked(g_r.clone(), g_c) is None
    assert torch.equal(combine(g_r, g_c, [1.0, 0.0, 0.0]), g_r)
    assert torch.equal(combine(g_r, g_c, [0.0, 0.0, 1.0]), g_c[1])
    expected = 0.5 * g_r - 2.0 * g_c[0] + 3.0 * g_c[1]
    for first, rest in ((g_r, g_c), (g_r.clone(), g_c.clone())):
        torch.testing.assert_close(combine(first, rest, [0.5, -2.0, 3.0]), expected)
        assert torch.equal(combine(first, rest, [0.0, 0.0, 0.0]), torch.zeros(5))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reward_weight": -0.1}, "reward_weight must be >= 0"),
        ({"cost_weight": [0.5, -1.0]}, "cost_weight must be >= 0"),
        ({"reward_weight": 0.0, "cost_weight": 0.0}, "give at least one > 0"),
        ({"reward_weight": float("inf")}, "reward_weight must be finite"),
        ({"cost_weight": []}, "empty sequence"),
    ],
)
def test_weight_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProjectionCombiner(**kwargs)


def test_combiner_reprs_show_settings():
    assert repr(ProjectionCombiner(0.3, [0.2, 0.5])) == (
        "ProjectionCombiner(reward_weight=0.3, cost_weight=[0.2, 0.5])"
    )
    assert repr(PCGradCombiner(seed=4)) == "PCGradCombiner(seed=4)"
    with pytest.raises(TypeError, match="seed"):
        PCGradCombiner(seed="x")


@settings(max_examples=60, deadline=None)
@given(st.lists(vectors, min_size=2, max_size=2), st.floats(0, 2), st.floats(0, 2))
def test_two_task_closed_form_matches_general_projection(rows, x_r, x_c):
    if x_r == 0 and x_c == 0:
        x_r = 1.0
    directions = torch.tensor(rows, dtype=torch.float64)
    gram = (directions @ directions.T).tolist()
    closed = ProjectionCombiner(x_r, x_c).coefficients(gram)
    matrix = projection_matrix(gram, fixed_order(2))
    general = [x_r * matrix[0][k] + x_c * matrix[1][k] for k in range(2)]
    assert closed == pytest.approx(general, rel=1e-12, abs=1e-12)
