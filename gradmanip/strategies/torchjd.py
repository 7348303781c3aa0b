"""TorchJD's Gramian weightings (UPGrad, CAGrad, DualProj, ...) as combiners and strategies.

TorchJD (Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024) aggregates
the rows of a Jacobian; most of its aggregators are a *weighting* of the Gramian ``G = J J^T``
followed by ``update = J^T w``. Here J's rows are the directions (g_r, g_c[0], ...), G is the Gram
matrix that every combiner already reads, so a weighting is exactly a combiner on the coefficient
fast path: ``coefficients = weighting(G)``.

TorchJD is an optional extra: ``pip install "gradmanip[torchjd]"`` (it brings TorchJD with the
solvers that UPGrad, DualProj and CAGrad need). The import happens when a combiner is built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gradmanip.strategies.combiner_strategy import CombinerStrategy
from gradmanip.strategies.combiners import Combiner
from gradmanip.strategies.gram import Gram

DTYPE = torch.float64
INSTALL_HINT = 'pip install "gradmanip[torchjd]"'

#: short name -> TorchJD weighting class (in ``torchjd.aggregation``)
WEIGHTINGS = {
    "upgrad": "UPGradWeighting",
    "cagrad": "CAGradWeighting",
    "dualproj": "DualProjWeighting",
    "imtl_g": "IMTLGWeighting",
    "aligned_mtl": "AlignedMTLWeighting",
    "torchjd_mgda": "MGDAWeighting",
}


#: settings a weighting needs when it is given by name alone (CAGrad's radius scale c)
DEFAULT_SETTINGS: dict[str, dict[str, Any]] = {"cagrad": {"c": 0.4}}


def torchjd_aggregation() -> Any:
    """The ``torchjd.aggregation`` module, or ImportError naming the extra to install."""
    try:
        import torchjd.aggregation as aggregation
    except ImportError as error:
        raise ImportError(
            f"the TorchJD combiners need the optional package torchjd: {INSTALL_HINT}"
        ) from error
    return aggregation


def make_weighting(name: str, **settings: Any) -> nn.Module:
    """The TorchJD weighting called ``name`` (see :data:`WEIGHTINGS`) built with ``settings``
    (over the defaults of :data:`DEFAULT_SETTINGS`)."""
    if name not in WEIGHTINGS:
        raise ValueError(f"unknown TorchJD weighting {name!r}; available: {sorted(WEIGHTINGS)}")
    aggregation = torchjd_aggregation()
    settings = {**DEFAULT_SETTINGS.get(name, {}), **settings}
    try:
        return getattr(aggregation, WEIGHTINGS[name])(**settings)
    except ImportError as error:  # a solver of that weighting is missing
        raise ImportError(f"{error} (or {INSTALL_HINT})") from error
    except TypeError as error:
        raise TypeError(f"settings {settings} of the TorchJD weighting {name!r}: {error}") from None


class TorchJDCombiner(Combiner):
    """A TorchJD Gramian weighting as a combiner: ``c = weighting(G / trace(G))`` on the
    (active) directions, in float64 (scaled to unit trace, so that the coefficients depend only
    on ratios of Gram entries as every combiner's do: TorchJD's tolerances, e.g. its 1e-4
    normalisation threshold, are absolute). ``weighting`` is a name of :data:`WEIGHTINGS` (with
    ``settings`` for its constructor, e.g. ``c=0.4`` for CAGrad) or a TorchJD ``Weighting``.

    UPGrad (Quinton & Rey 2024, Eq. 5) projects every direction onto the dual cone of all of
    them and averages; with two directions that is the PCRPO projection with x_r = x_c = 0.5
    (TorchJD regularises the Gramian by 1e-4 of its scale, so the two agree to about 1e-4).
    CAGrad (Liu et al. 2021, Alg. 1), DualProj and the others are TorchJD's implementations.
    """

    def __init__(self, weighting: str | nn.Module = "upgrad", **settings: Any) -> None:
        super().__init__()
        if isinstance(weighting, str):
            self.weighting_name = weighting
            self.weighting = make_weighting(weighting, **settings)
        elif isinstance(weighting, nn.Module):
            if settings:
                raise ValueError("settings apply to a weighting given by name, not by instance")
            self.weighting_name = type(weighting).__name__
            self.weighting = weighting
        else:
            raise TypeError(
                f"weighting must be a name in {sorted(WEIGHTINGS)} or a TorchJD Weighting, "
                f"got {type(weighting).__name__}"
            )
        self.settings = dict(settings)

    def coefficients(self, gram: Gram, active: Sequence[bool] | None = None) -> list[float]:
        size = len(gram)
        indices = [i for i in range(size) if active is None or active[i]]
        coefficients = [0.0] * size
        sub_gram = torch.tensor([[gram[i][j] for j in indices] for i in indices], dtype=DTYPE)
        trace = float(sub_gram.diagonal().sum())
        if not (trace > 0 and math.isfinite(trace)):
            return coefficients  # every direction is zero: nothing to weigh
        # unit trace: the gram is known up to a factor, and TorchJD's tolerances are absolute
        weights = self.weighting(sub_gram / trace).tolist()
        for index, weight in zip(indices, weights, strict=True):
            coefficients[index] = float(weight)
        return coefficients

    def _settings(self) -> dict[str, object]:
        return {"weighting": self.weighting_name, **self.settings}


class _TorchJDStrategy(CombinerStrategy):
    """A TorchJD weighting on the 1 + K directions, independent of J_c_hat."""

    weighting_name = ""

    def __init__(self, **settings: Any) -> None:
        super().__init__(TorchJDCombiner(self.weighting_name, **settings))

    def _settings(self) -> dict[str, object]:
        return self.combiner._settings()


class UPGrad(_TorchJDStrategy):
    """UPGrad (Quinton & Rey 2024, "Jacobian Descent for Multi-Objective Optimization", Eq. 5)
    on the 1 + K objectives, through TorchJD: every direction projected onto the dual cone of all
    of them, averaged. The update never hurts an objective to first order. Needs the ``torchjd``
    extra; ``SoftSwitch(in_band="upgrad")`` applies it inside the PCRPO band only."""

    name = "upgrad"
    weighting_name = "upgrad"

    def __init__(self) -> None:
        super().__init__()


class CAGrad(_TorchJDStrategy):
    """CAGrad (Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning",
    Alg. 1) through TorchJD: the update within radius ``c |g_0|`` of the mean direction g_0 that
    maximises the worst objective's improvement (c >= 0). Needs the ``torchjd`` extra."""

    name = "cagrad"
    weighting_name = "cagrad"

    def __init__(self, c: float = 0.4) -> None:
        if isinstance(c, bool) or not isinstance(c, int | float) or not c >= 0:
            raise ValueError(f"c must be a number >= 0 (the CAGrad radius scale), got {c!r}")
        super().__init__(c=float(c))
