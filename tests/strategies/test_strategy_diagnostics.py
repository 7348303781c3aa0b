"""Diagnostics: Python values on the coefficient path, tensors with fixed dtypes at the boundary."""

from __future__ import annotations

import pytest
import torch

from gradmanip.strategies import make_strategy
from gradmanip.strategies.diagnostics import as_tensor, as_tensors
from gradmanip.strategies.gram import direction_gram


@pytest.mark.parametrize(
    ("value", "dtype", "shape"),
    [
        (True, torch.bool, ()),
        (2, torch.int64, ()),
        (0.25, torch.float64, ()),
        ([0.5, -0.5], torch.float64, (2,)),
        ([True, False], torch.bool, (2,)),
        ([1, 0], torch.int64, (2,)),
    ],
)
def test_as_tensor_dtypes_and_shapes(value, dtype, shape):
    tensor = as_tensor(value)
    assert tensor.dtype == dtype and tensor.shape == shape
    assert tensor.tolist() == value


def test_tensors_pass_through_unchanged():
    tensor = torch.tensor([1.0])
    assert as_tensors({"x": tensor})["x"] is tensor


def test_coefficient_path_diagnostics_are_python_values():
    g_r, g_c = torch.tensor([1.0, 0.0]), torch.tensor([[-1.0, 1.0]])
    strategy = make_strategy("soft_switch", cost_limit=1.0)
    _, values = strategy.coefficients(direction_gram(g_r, g_c), torch.tensor([1.0]))
    assert values == {"mode": 0, "cosine": [pytest.approx(-(0.5**0.5))], "conflict": [True]}
    _, tensors = strategy.aggregate(g_r, g_c, torch.tensor([1.0]))
    assert tensors["mode"].dtype == torch.int64 and tensors["conflict"].dtype == torch.bool
    assert tensors["cosine"].dtype == torch.float64 and tensors["cosine"].shape == (1,)
