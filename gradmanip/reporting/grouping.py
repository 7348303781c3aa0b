"""Group runs that differ only in their seed.

Two runs belong to one group when their task, algorithm, strategy and every setting that changes
what is learned are equal. The settings are the run's resolved configuration, recorded as
``config`` in ``run.json``, without :data:`NOT_LEARNING_SETTINGS`; runs recorded before
``config`` existed use the fields of ``run.json`` instead (budget, epoch size, cost limit, slack).
Groups of one task, algorithm and strategy that differ in other settings are labelled by those
settings, e.g. ``soft_switch (total_steps=300000)``, so that nothing is averaged silently. The
code revision of a run's suite (``suite.json`` above it) counts as a setting, ``revision``: a
suite run again at a later revision forms groups of its own. Groups of different revisions are
labelled without the settings that differ only by being absent at one revision (added to the
configuration later, one value wherever present), unless the labels would then no longer tell
the groups apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gradmanip.reporting.runs import RunRecord

NOT_LEARNING_SETTINGS = frozenset(
    {
        "seed",
        "resume",
        "progress",
        "eval_episodes",
        "eval_every",
        "video",
        "checkpoint_every",
        "torch_threads",
        "logger",
        "num_workers",
        "envs_per_worker",
        "collector",
        "hydra",
    }
)
"""Top-level configuration keys left out of a group's settings: they change how a run is carried
out, logged or evaluated, not what is learned."""

REVISION_SETTING = "revision"
"""The suite's code revision, shortened to :data:`REVISION_DIGITS` hexadecimal digits."""
REVISION_DIGITS = 7

SEED_SETTING = "seed"
"""Left out at any depth too (``algo.base.seed``, ``strategy.seed`` follow the run's seed)."""

RUN_INFO_SETTINGS = {
    "total_steps": "total_steps",
    "steps_per_epoch": "steps_per_epoch",
    "cost_limit": "env.cost_limit",
    "slack_upper": "env.upper_slack",
    "slack_lower": "env.lower_slack",
}
"""``run.json`` fields of runs without ``config``, and their names in the configuration."""

_IDENTITY = {"env", "algo", "strategy", "seed", "config"}
_MISSING = "<missing>"


def run_settings(info: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a run, as dotted names (``algo.base.lr``) and plain values."""
    config = info.get("config")
    if isinstance(config, Mapping):
        kept = {k: v for k, v in config.items() if k not in NOT_LEARNING_SETTINGS}
        return _flatten(kept)
    return {RUN_INFO_SETTINGS.get(k, k): _plain(v) for k, v in info.items() if k not in _IDENTITY}


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if key == SEED_SETTING:
            continue
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = _plain(value)
    return flat


def _plain(value: Any) -> Any:
    """Whole floats as integers (``total_steps=1e6`` is 1000000), lists as lists."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class RunGroup:
    """Runs of one task, algorithm, strategy and settings; their seeds are the spread."""

    env: str
    algo: str
    strategy: str
    settings: dict[str, Any]
    has_config: bool
    runs: list[RunRecord] = field(default_factory=list)
    label: str = ""
    """The settings that tell this group from others of its task, algorithm and strategy."""

    @property
    def name(self) -> str:
        """The strategy, with the label if any: ``soft_switch (total_steps=300000)``."""
        return f"{self.strategy} ({self.label})" if self.label else self.strategy

    @property
    def seeds(self) -> int:
        return len({run.seed for run in self.runs})

    @property
    def total_steps(self) -> int | None:
        """The budget of the group's runs, if recorded."""
        steps = self.settings.get("total_steps")
        return int(steps) if isinstance(steps, int | float) else None


def group_runs(runs: Iterable[RunRecord]) -> list[RunGroup]:
    """The runs' groups, sorted by task, algorithm, strategy and label."""
    groups: dict[tuple, RunGroup] = {}
    for run in runs:
        settings = run_settings(run.info)
        if run.revision:
            settings[REVISION_SETTING] = run.revision[:REVISION_DIGITS]
        has_config = isinstance(run.info.get("config"), Mapping)
        key = (run.env, run.algo, run.strategy, has_config, _canon(settings))
        if key not in groups:
            groups[key] = RunGroup(run.env, run.algo, run.strategy, settings, has_config)
        groups[key].runs.append(run)
    siblings: dict[tuple, list[RunGroup]] = {}
    for group in groups.values():
        siblings.setdefault((group.env, group.algo, group.strategy), []).append(group)
    for family in siblings.values():
        _label(family)
    return sorted(groups.values(), key=lambda g: (g.env, g.algo, g.strategy, g.label))


def differing_settings(groups: Sequence[RunGroup]) -> list[str]:
    """Settings whose values differ between ``groups``. A setting absent from a group with a
    recorded configuration counts as a value; absent from one without, it is unknown."""
    names = sorted({name for g in groups for name in g.settings})
    differing = []
    for name in names:
        values = {
            _canon(g.settings[name]) if name in g.settings else _MISSING
            for g in groups
            if g.has_config or name in g.settings
        }
        if len(values) > 1:
            differing.append(name)
    return differing


def _label(family: list[RunGroup]) -> None:
    if len(family) < 2:
        return
    names = differing_settings(family)
    labels = _labels(family, names)
    if REVISION_SETTING in names:
        held = [
            n for n in names if len({_canon(g.settings[n]) for g in family if n in g.settings}) > 1
        ]
        shorter = _labels(family, held)
        if len(set(shorter)) == len(family):
            labels = shorter
    for group, label in zip(family, labels, strict=True):
        group.label = label


def _labels(family: list[RunGroup], names: Sequence[str]) -> list[str]:
    some_config = any(g.has_config for g in family)
    labels = []
    for group in family:
        parts = [f"{n}={_shown(group.settings[n])}" for n in names if n in group.settings]
        if some_config and not group.has_config:
            parts.append("config not recorded")
        labels.append(", ".join(parts))
    return labels


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str | int):
        return str(value)
    return json.dumps(value, default=str).replace('"', "")
