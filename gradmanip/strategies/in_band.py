"""The in-band rule of the soft switch: a combiner given by instance or by name."""

from __future__ import annotations

from gradmanip.strategies.combiners import (
    Combiner,
    PCGradCombiner,
    ProjectionCombiner,
    WeightedSumCombiner,
)
from gradmanip.strategies.mgda import MGDACombiner
from gradmanip.strategies.settings import PerConstraint
from gradmanip.strategies.torchjd import WEIGHTINGS, TorchJDCombiner


def as_combiner(value: Combiner | str) -> Combiner:
    """Accept a combiner instance or a short name: projection, pcgrad, weighted_sum, mgda, or a
    TorchJD weighting (upgrad, cagrad, dualproj, ...; needs the ``torchjd`` extra)."""
    if isinstance(value, Combiner):
        return value
    names = {
        "projection": ProjectionCombiner,
        "pcgrad": PCGradCombiner,
        "weighted_sum": WeightedSumCombiner,
        "mgda": MGDACombiner,
    }
    if isinstance(value, str) and value in names:
        return names[value]()
    if isinstance(value, str) and value in WEIGHTINGS:
        return TorchJDCombiner(value)
    raise ValueError(
        f"in_band must be a Combiner or one of {sorted(names) + sorted(WEIGHTINGS)}, got {value!r}"
    )


def in_band_combiner(
    in_band: Combiner | str | None, reward_weight: float | None, cost_weight: PerConstraint | None
) -> Combiner:
    """The in-band combiner; ``reward_weight``/``cost_weight`` (x_r, x_c) configure the weighted
    ones by name (``projection``, the default, and ``weighted_sum``)."""
    weighted = {"projection": ProjectionCombiner, "weighted_sum": WeightedSumCombiner}
    weights_given = reward_weight is not None or cost_weight is not None
    name = "projection" if in_band is None else in_band
    if isinstance(name, str) and name in weighted:
        x_r = 0.5 if reward_weight is None else reward_weight
        x_c = 0.5 if cost_weight is None else cost_weight
        return weighted[name](x_r, x_c)
    if weights_given:
        raise ValueError(
            f"reward_weight/cost_weight set the weights of the 'projection' and 'weighted_sum' "
            f"in-band combiners, but in_band={in_band!r}: set the weights on the combiner itself "
            "or drop them"
        )
    return as_combiner(in_band)
