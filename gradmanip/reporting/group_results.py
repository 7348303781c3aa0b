"""A group's figures over its seeds, against the unconstrained reference of its task.

The reference of a group is the ``reward_only`` group of the same task, algorithm and budget
(``total_steps``); where several qualify, the one whose other settings (the strategy's aside)
differ least. Its reward is the mean over its runs of their final reward, computed on the same
epochs as the group's (as if stopped at ``cut`` too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gradmanip.reporting.grouping import RunGroup, differing_settings
from gradmanip.reporting.run_metrics import FINAL_FRACTION, RunFigures, final_reward, run_figures

REFERENCE_STRATEGY = "reward_only"


def reference_group(group: RunGroup, groups: Sequence[RunGroup]) -> RunGroup | None:
    """The unconstrained group ``group`` is measured against, if the runs hold one."""
    candidates = [
        g
        for g in groups
        if g.strategy == REFERENCE_STRATEGY
        and (g.env, g.algo, g.total_steps) == (group.env, group.algo, group.total_steps)
    ]
    if not candidates:
        return None

    def distance(candidate: RunGroup) -> tuple[int, str]:
        names = differing_settings([candidate, group])
        return sum(not n.startswith("strategy.") for n in names), candidate.label

    return min(candidates, key=distance)


def reference_reward(
    reference: RunGroup | None, cut: float | None = None, fraction: float = FINAL_FRACTION
) -> float | None:
    """Mean final reward of the reference group's runs (``None`` without one)."""
    if reference is None:
        return None
    rewards = [final_reward(run, cut, fraction) for run in reference.runs]
    rewards = [r for r in rewards if math.isfinite(r)]
    return sum(rewards) / len(rewards) if rewards else None


@dataclass(frozen=True)
class GroupResult:
    """The figures of each run of ``group``, with the reference they were measured against."""

    group: RunGroup
    figures: list[RunFigures]
    reference: RunGroup | None
    reference_reward: float | None

    @property
    def limits(self) -> list[float]:
        return self.group.runs[0].limits

    @property
    def unfinished(self) -> int:
        return sum(not run.finished for run in self.group.runs)


def group_result(
    group: RunGroup,
    groups: Sequence[RunGroup],
    cut: float | None = None,
    fraction: float = FINAL_FRACTION,
) -> GroupResult:
    """``group``'s figures (as if stopped at ``cut`` steps) against its reference."""
    reference = reference_group(group, groups)
    reward = reference_reward(reference, cut, fraction)
    figures = [run_figures(run, reward, cut, fraction) for run in group.runs]
    return GroupResult(group, figures, reference, reward)
