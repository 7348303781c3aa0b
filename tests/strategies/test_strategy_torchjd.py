"""TorchJD weightings as combiners and strategies; the error without the extra; MGDA compared."""

from __future__ import annotations

import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradmanip.strategies import (
    MODE_BOTH,
    MODE_COST_ONLY,
    CAGrad,
    ProjectionCombiner,
    SoftSwitch,
    TorchJDCombiner,
    UPGrad,
)
from gradmanip.strategies.gram import combine, direction_gram
from gradmanip.strategies.mgda import _kkt_violation, min_norm_weights
from gradmanip.strategies.testing import check_strategy


def test_upgrad_of_two_directions_is_the_pcrpo_projection_by_hand() -> None:
    # |g_r|^2 = 1, |g_c|^2 = 2, g_r.g_c = -0.5 (conflict): projecting each onto the dual cone of
    # both is projecting it onto the normal plane of the other, then averaging:
    # (0.5 + 0.5 * 0.5 / 1, 0.5 + 0.5 * 0.5 / 2) = (0.75, 0.625)
    gram = [[1.0, -0.5], [-0.5, 2.0]]
    upgrad = TorchJDCombiner("upgrad").coefficients(gram)
    assert upgrad == pytest.approx([0.75, 0.625], abs=1e-3)
    assert upgrad == pytest.approx(ProjectionCombiner(0.5, 0.5).coefficients(gram), abs=1e-3)
    no_conflict = TorchJDCombiner("upgrad").coefficients([[1.0, 0.2], [0.2, 2.0]])
    assert no_conflict == pytest.approx([0.5, 0.5], abs=1e-3)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(1, 4))
def test_upgrad_never_hurts_an_objective_to_first_order(seed: int, count: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    g_r = torch.randn(8, generator=gen, dtype=torch.float64)
    g_c = torch.randn(count, 8, generator=gen, dtype=torch.float64)
    update, _ = UPGrad().aggregate(g_r, g_c, torch.zeros(count))
    products = torch.cat((g_r.unsqueeze(0), g_c)) @ update
    scale = float(g_r.norm() ** 2 + (g_c**2).sum())
    assert (products >= -1e-3 * scale).all()  # the dual cone, up to TorchJD's regularisation


def test_cagrad_with_zero_radius_is_the_mean_direction() -> None:
    g_r, g_c = torch.tensor([1.0, 0.0]), torch.tensor([[-1.0, 2.0]])
    update, diagnostics = CAGrad(c=0.0).aggregate(g_r, g_c, torch.tensor([1.0]))
    torch.testing.assert_close(update, torch.tensor([0.0, 1.0]))
    assert int(diagnostics["mode"]) == MODE_BOTH
    with pytest.raises(ValueError, match="c must be"):
        CAGrad(c=-1.0)


def test_soft_switch_uses_upgrad_in_band_only() -> None:
    strategy = SoftSwitch(cost_limit=10.0, upper_slack=2.0, lower_slack=-2.0, in_band="upgrad")
    g_r, g_c = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([[-0.5, 1.0, 0.0]])
    in_band, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([10.0]))
    gram = direction_gram(g_r, g_c)
    expected = combine(g_r, g_c, TorchJDCombiner("upgrad").coefficients(gram))
    torch.testing.assert_close(in_band, expected)
    above, diagnostics = strategy.aggregate(g_r, g_c, torch.tensor([13.0]))
    assert int(diagnostics["mode"]) == MODE_COST_ONLY and torch.equal(above, g_c[0])


@pytest.mark.parametrize(
    "strategy",
    [UPGrad(), CAGrad(), SoftSwitch(cost_limit=[1.0, 2.0], in_band="dualproj")],
    ids=repr,
)
def test_shared_property_suite(strategy) -> None:
    check_strategy(strategy)


def test_weighting_by_name_instance_and_errors() -> None:
    from torchjd.aggregation import UPGradWeighting

    gram = [[1.0, -0.5], [-0.5, 2.0]]
    by_instance = TorchJDCombiner(UPGradWeighting()).coefficients(gram)
    assert by_instance == TorchJDCombiner("upgrad").coefficients(gram)
    assert TorchJDCombiner("upgrad").coefficients([[0.0, 0.0], [0.0, 0.0]]) == [0.0, 0.0]
    assert TorchJDCombiner("upgrad").coefficients(gram, [False, True])[0] == 0.0
    with pytest.raises(ValueError, match="unknown TorchJD weighting 'nash'"):
        TorchJDCombiner("nash")
    with pytest.raises(TypeError, match="weighting must be"):
        TorchJDCombiner(3)
    assert repr(TorchJDCombiner("cagrad", c=0.5)) == "TorchJDCombiner(weighting=cagrad, c=0.5)"
    assert TorchJDCombiner("cagrad").weighting.c == 0.4  # by name alone: CAGrad's default
    with pytest.raises(TypeError, match="weighting 'upgrad'"):
        TorchJDCombiner("upgrad", radius=1.0)


def test_missing_torchjd_names_the_extra(monkeypatch) -> None:
    for name in list(sys.modules):
        if name == "torchjd" or name.startswith("torchjd."):
            monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    for build in (UPGrad, lambda: SoftSwitch(in_band="upgrad"), lambda: CAGrad(0.4)):
        with pytest.raises(ImportError, match=r'pip install "gradmanip\[torchjd\]"'):
            build()


def test_our_mgda_is_exact_where_torchjd_stops_at_its_tolerance() -> None:
    """TorchJD's MGDAWeighting runs Frank-Wolfe to a tolerance (1e-3); ours solves the KKT
    conditions on supports exactly. On this case the two differ by 0.02 in a weight."""
    gen = torch.Generator().manual_seed(0)
    scales = torch.tensor([[1.0], [3.0], [0.3]], dtype=torch.float64)
    torch.randn(3, 5, generator=gen, dtype=torch.float64)  # the first case agrees; take the next
    jacobian = torch.randn(3, 5, generator=gen, dtype=torch.float64) * scales
    gram = (jacobian @ jacobian.T).tolist()
    ours = min_norm_weights(gram)
    theirs = TorchJDCombiner("torchjd_mgda").coefficients(gram)
    assert _kkt_violation(gram, ours) < 1e-12 < 1e-4 < _kkt_violation(gram, theirs)
    ours_norm, theirs_norm = (
        float((torch.tensor(w, dtype=torch.float64) @ jacobian).norm()) for w in (ours, theirs)
    )
    assert ours_norm < theirs_norm
    assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) > 0.01
