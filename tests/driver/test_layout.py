"""The driver's split of parameters into an in-place part and a copied block never changes
the result: Gram matrix, coefficients, ``.grad`` and the lazily built tensors of a step."""

from __future__ import annotations

from unittest import mock

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gradmanip.driver.gradient_driver import GradientDriver
from gradmanip.strategies import make_strategy
from gradmanip.strategies.gram import combine, direction_gram


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    threshold=st.integers(1, 48),
    constraints=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_split_of_parameters_does_not_change_the_step(sizes, threshold, constraints, seed):
    generator = torch.Generator().manual_seed(seed)
    params = [
        nn.Parameter(torch.randn(size, generator=generator, dtype=torch.float64)) for size in sizes
    ]
    # loss_m = sum_i A_mi . p_i + B_mi . p_i^2, so -grad(loss_m) = -(A_m + 2 B_m p) exactly
    linear = [
        [torch.randn(size, generator=generator, dtype=torch.float64) for size in sizes]
        for _ in range(1 + constraints)
    ]
    quadratic = [
        [torch.rand(size, generator=generator, dtype=torch.float64) for size in sizes]
        for _ in range(1 + constraints)
    ]

    def losses():
        values = [
            sum((a * p + b * p * p).sum() for a, b, p in zip(lin, quad, params, strict=True))
            for lin, quad in zip(linear, quadratic, strict=True)
        ]
        return values[0], values[1:]

    expected = torch.stack(
        [
            -torch.cat([a + 2 * b * p.detach() for a, b, p in zip(lin, quad, params, strict=True)])
            for lin, quad in zip(linear, quadratic, strict=True)
        ]
    )
    cost = torch.full((constraints,), 1.0, dtype=torch.float64)  # on the limit: in band
    strategy = make_strategy("soft_switch", cost_limit=1.0)
    with mock.patch("gradmanip.driver.gradient_driver.IN_PLACE_NUMEL", threshold):
        driver = GradientDriver(params, strategy)
    assert sorted(driver._small + driver._large) == list(range(len(sizes)))
    assert all(sizes[i] >= threshold for i in driver._large)
    result = driver.step(*losses(), cost)

    torch.testing.assert_close(result.directions, expected)
    reference, _ = make_strategy("soft_switch", cost_limit=1.0).coefficients(
        direction_gram(expected[0], expected[1:]), cost
    )
    torch.testing.assert_close(result.coefficients, reference)
    update = combine(expected[0], expected[1:], reference)
    torch.testing.assert_close(result.update, update)
    written = torch.cat([p.grad.reshape(-1) for p in params])
    assert torch.equal(written, -result.update)
    torch.testing.assert_close(result.update_norm, float(update.norm()))
