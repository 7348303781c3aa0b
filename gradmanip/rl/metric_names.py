"""Metric names of per-constraint quantities, one rule for every column a run logs.

With one constraint (K = 1) a quantity keeps its plain name (``episode_cost``, ``loss/cost``,
``strategy/lagrange_multiplier``). With K > 1 constraint ``k`` gets the suffix ``_k``
(``episode_cost_0``, ``episode_cost_1``, ...), and the plain name of a cost, where a total makes
sense (``episode_cost``, ``eval/cost``), holds the sum over the constraints.
"""

from __future__ import annotations

from collections.abc import Sequence


def constraint_columns(
    name: str, values: Sequence[float], *, total: bool = False
) -> dict[str, float]:
    """``{name: value}`` for one value; ``{name_0: v_0, ..., name_{K-1}: v_{K-1}}`` for K > 1,
    plus ``{name: sum}`` first with ``total``."""
    values = [float(v) for v in values]
    if len(values) == 0:
        raise ValueError(f"{name}: no values (one per constraint expected)")
    if len(values) == 1:
        return {name: values[0]}
    columns = {name: sum(values)} if total else {}
    columns.update({f"{name}_{k}": value for k, value in enumerate(values)})
    return columns
