"""What one run achieved, from its per-epoch metrics and its final evaluation.

- final reward and costs: the mean over the last ``final_fraction`` of the epochs (at least one);
- within the limits: the share of the epochs after the first ``WARMUP_FRACTION`` whose episodic
  costs are all within their limits;
- steps to a share of a reference reward: the environment steps of the first epoch whose episodic
  reward reaches that share with every cost within its limit;
- test reward and costs: the mean over the last ``final_fraction`` of the deterministic
  evaluations made during training (``eval_every`` > 0), the measure the off-policy peers report
  (OmniSafe's ``TestEpRet`` and ``TestEpCost``);
- evaluation: ``eval/return`` and ``eval/cost`` (K > 1: ``eval/cost_k``) of ``summary.json``.

``cut`` computes the same as if training had stopped at that many environment steps (the
evaluation of the final policy then has no counterpart).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gradmanip.reporting.runs import RunRecord, constraint_names

FINAL_FRACTION = 0.1
WARMUP_FRACTION = 0.2
REACH_FRACTIONS = (0.5, 0.8)

Row = Mapping[str, Any]


def _count(n: int, fraction: float) -> float:
    return round(n * fraction, 9)  # 30 x 0.1 is 3, not 3.0000000000000004


def last_part(items: Sequence[Any], fraction: float = FINAL_FRACTION) -> Sequence[Any]:
    """The last ``fraction`` of ``items``: whole items, at least one (none of none)."""
    return items[-max(1, math.ceil(_count(len(items), fraction))) :] if items else items


def after_warmup(items: Sequence[Any], warmup: float = WARMUP_FRACTION) -> Sequence[Any]:
    """``items`` without their first ``warmup`` fraction (whole items, rounded down)."""
    return items[math.floor(_count(len(items), warmup)) :]


def final_mean(values: Sequence[float], fraction: float = FINAL_FRACTION) -> float:
    """Mean of the last ``fraction`` of ``values`` (at least one); NaN for none."""
    if not values:
        return math.nan
    last = last_part(values, fraction)
    return float(sum(last) / len(last))


def within_limits(row: Row, keys: Sequence[str], limits: Sequence[float]) -> bool:
    """Every constraint's episodic cost of the epoch is within its limit."""
    return all(row[key] <= limit for key, limit in zip(keys, limits, strict=True))


def share_within(
    rows: Sequence[Row],
    keys: Sequence[str],
    limits: Sequence[float],
    warmup: float = WARMUP_FRACTION,
) -> float:
    """Share of the epochs after the first ``warmup`` of them within every limit."""
    kept = after_warmup(rows, warmup)
    if not kept:
        return math.nan
    return sum(within_limits(r, keys, limits) for r in kept) / len(kept)


def steps_to_reach(
    rows: Sequence[Row], target: float, keys: Sequence[str], limits: Sequence[float]
) -> float | None:
    """Environment steps of the first epoch with reward >= ``target`` within every limit."""
    for row in rows:
        if row["episode_return"] >= target and within_limits(row, keys, limits):
            return float(row["env_steps"])
    return None


def until(rows: Sequence[Row], steps: float | None) -> list[Row]:
    """The epochs that end at or before ``steps`` environment steps (all for ``None``)."""
    return [r for r in rows if steps is None or r["env_steps"] <= steps]


def final_reward(
    run: RunRecord, cut: float | None = None, fraction: float = FINAL_FRACTION
) -> float:
    """The run's final reward (see :func:`final_mean`), as if stopped at ``cut`` steps."""
    return final_mean([r["episode_return"] for r in until(run.rows, cut)], fraction)


def eval_costs(summary: Mapping[str, Any], k: int) -> list[float | None]:
    """Evaluation cost per constraint: ``eval/cost`` (K = 1), or ``eval/cost_0``, ``eval/cost_1``,
    ... (K > 1, where ``eval/cost`` is their sum: alone it gives no constraint's cost)."""
    return [_number(summary.get(name)) for name in constraint_names("eval/cost", k)]


def evaluated_in_training(
    run: RunRecord, cut: float | None = None, fraction: float = FINAL_FRACTION
) -> tuple[float | None, list[float | None]]:
    """Reward and per-constraint costs of the last ``fraction`` of the deterministic evaluations
    made during training (at least one), as if stopped at ``cut``; ``(None, [])`` without any."""
    done = until(run.evaluations, cut)
    if not done:
        return None, []
    last = last_part(done, fraction)
    per_row = [eval_costs(r, len(run.cost_keys)) for r in last]
    costs = [_mean_or_none([c[i] for c in per_row]) for i in range(len(run.cost_keys))]
    return _mean_or_none([r["eval/return"] for r in last]), costs


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean, or ``None`` if any value is missing."""
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return sum(kept) / len(kept) if kept and len(kept) == len(values) else None


@dataclass(frozen=True)
class RunFigures:
    """One run's figures; ``reach`` maps a share of the reference reward to the steps it took
    (``None``: not reached) and is empty without a positive reference."""

    reward: float
    costs: list[float]
    within: float
    eval_reward: float | None = None
    eval_costs: list[float | None] = field(default_factory=list)
    test_reward: float | None = None
    test_costs: list[float | None] = field(default_factory=list)
    reach: dict[float, float | None] = field(default_factory=dict)


def run_figures(
    run: RunRecord,
    reference: float | None,
    cut: float | None = None,
    fraction: float = FINAL_FRACTION,
    reach: Sequence[float] = REACH_FRACTIONS,
) -> RunFigures:
    """The figures of ``run`` against a ``reference`` reward, as if stopped at ``cut`` steps."""
    rows = until(run.rows, cut)
    keys, limits = run.cost_keys, run.limits
    steps = {}
    if reference is not None and reference > 0:
        steps = {share: steps_to_reach(rows, share * reference, keys, limits) for share in reach}
    evaluated = cut is None and "eval/return" in run.summary
    test_reward, test_costs = evaluated_in_training(run, cut, fraction)
    return RunFigures(
        reward=final_mean([r["episode_return"] for r in rows], fraction),
        costs=[final_mean([r[k] for r in rows], fraction) for k in keys],
        within=share_within(rows, keys, limits),
        eval_reward=_number(run.summary.get("eval/return")) if evaluated else None,
        eval_costs=eval_costs(run.summary, len(keys)) if evaluated else [],
        test_reward=test_reward,
        test_costs=test_costs,
        reach=steps,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
