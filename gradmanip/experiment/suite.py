"""Benchmark suites: tasks x strategies x seeds at a budget, run as resumable Hydra multiruns.

A suite is a config (``recipes/config/suite/*.yaml``) of *groups*; each group is a grid of tasks,
strategies and seeds with its own budget and overrides. Every run lives in a fixed directory,
``<out>/<task>/<algo>-<strategy>/seed<seed>``, so running the suite again skips the finished runs
(``summary.json`` present), resumes the interrupted ones from their checkpoints and starts the
rest: a suite can span several sittings. Each group is one multirun of the training recipe with
``resume=true``, on any Hydra launcher (one after the other, local worker processes, Ray).

The suite directory also records what produced it: ``versions.txt`` (the exact package versions,
a file that ``pip install -c`` accepts) and ``suite.json`` (code revision, Python, platform). A
later sitting in another environment is refused instead of mixing results.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradmanip.experiment.config_checks import ConfigError
from gradmanip.reporting.runs import SUITE_INFO_NAME

VERSIONS_NAME = "versions.txt"
LAUNCHERS = ("basic", "local_parallel", "ray", "ray_cluster")
PROJECT = "gradmanip"


@dataclass(frozen=True)
class Run:
    """One training run of a suite."""

    task: str
    algo: str
    strategy: str
    seed: int
    total_steps: int

    def directory(self, out: Path) -> Path:
        return out / self.task / f"{self.algo}-{self.strategy}" / f"seed{self.seed}"


@dataclass
class Group:
    """A grid of runs sharing a budget and overrides (one multirun)."""

    tasks: list[str]
    strategies: list[str]
    seeds: list[int]
    total_steps: int
    algo: str = "ppo"
    overrides: list[str] = field(default_factory=list)

    def runs(self) -> list[Run]:
        """Seed-major order, as the multirun launches them (all seed-0 runs first)."""
        return [
            Run(task, self.algo, strategy, seed, self.total_steps)
            for seed in self.seeds
            for task in self.tasks
            for strategy in self.strategies
        ]

    def command(self, recipe: Path, out: Path, launcher: str, jobs: int) -> list[str]:
        """The multirun of the training recipe that runs (or resumes) every run of the group."""
        launch = [] if launcher == "basic" else [f"hydra/launcher={launcher}"]
        if launcher == "local_parallel":
            launch.append(f"hydra.launcher.n_jobs={jobs}")
        elif launcher == "ray":
            launch.append(f"+hydra.launcher.ray.init.num_cpus={jobs}")
        return [
            sys.executable,
            str(recipe),
            "-m",
            *launch,
            f"hydra.sweep.dir={out}",
            "hydra.sweep.subdir=${env.id}/${algo.name}-${hydra:runtime.choices.strategy}/seed${seed}",
            f"seed={_join(self.seeds)}",
            f"env={_join(self.tasks)}",
            f"strategy={_join(self.strategies)}",
            f"algo={self.algo}",
            f"total_steps={self.total_steps}",
            "resume=true",
            "progress=false",
            *self.overrides,
        ]


def _join(values: Iterable[object]) -> str:
    return ",".join(str(v) for v in values)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _items(value: Any, name: str) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise ConfigError(f"{name} must be a non-empty list, got {value!r}")
    return list(value)


def groups_of(suite: Mapping[str, Any]) -> list[Group]:
    """The suite's groups; a group's ``tasks``, ``total_steps``, ``algo`` and ``overrides``
    default to the suite's own (a group's overrides come after the suite's)."""
    raw_groups = suite.get("groups")
    if not raw_groups:
        raise ConfigError("suite.groups must list at least one group of runs")
    groups = []
    for index, raw in enumerate(raw_groups):
        where = f"suite.groups[{index}]"
        tasks = [str(t) for t in _items(raw.get("tasks", suite.get("tasks")), f"{where}.tasks")]
        strategies = [str(s) for s in _items(raw.get("strategies"), f"{where}.strategies")]
        seeds = [_int(s, f"{where}.seeds") for s in _items(raw.get("seeds"), f"{where}.seeds")]
        steps = _int(raw.get("total_steps", suite.get("total_steps")), f"{where}.total_steps")
        if steps < 1:
            raise ConfigError(f"{where}.total_steps must be >= 1, got {steps}")
        overrides = [*suite.get("overrides", []), *raw.get("overrides", [])]
        algo = str(raw.get("algo", suite.get("algo", "ppo")))
        groups.append(Group(tasks, strategies, seeds, steps, algo, [str(o) for o in overrides]))
    return groups


def run_status(directory: Path) -> str:
    """``done`` (summary written), ``partial`` (metrics but no summary) or ``pending``."""
    if (directory / "summary.json").exists():
        return "done"
    if (directory / "metrics.csv").exists():
        return "partial"
    return "pending"


def status_table(groups: Sequence[Group], out: Path) -> list[tuple[Run, str]]:
    return [(run, run_status(run.directory(out))) for group in groups for run in group.runs()]


def installed_versions() -> list[str]:
    """``name==version`` of every installed distribution but this project, sorted."""
    from importlib import metadata

    pins = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower().replace("_", "-") != PROJECT:
            pins[name.lower()] = f"{name}=={dist.version}"
    return [pins[key] for key in sorted(pins)]


def code_revision(root: Path) -> str | None:
    """The git commit of ``root`` (with ``+dirty`` when it has uncommitted changes), if any."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def _pins(text: str) -> dict[str, tuple[str, str]]:
    """Lower-case name -> (name, version) of the ``name==version`` lines of ``text``."""
    pins = {}
    for line in text.split():
        name, _, version = line.partition("==")
        pins[name.lower()] = (name, version)
    return pins


def version_difference(recorded: str, installed: str, versions_path: Path) -> str:
    """How two ``name==version`` lists differ, each kind of difference with its remedy."""
    old, new = _pins(recorded), _pins(installed)
    changed = sorted(k for k in old.keys() & new.keys() if old[k][1] != new[k][1])
    extra = sorted(new.keys() - old.keys())
    missing = sorted(old.keys() - new.keys())
    parts = []
    if changed:
        listed = ", ".join(
            f"{old[k][0]} {old[k][1]} recorded, {new[k][1]} installed" for k in changed
        )
        names = " ".join(old[k][0] for k in changed)
        parts.append(f"{listed} (`pip install -c {versions_path} {names}`)")
    if extra:
        names = " ".join(new[k][0] for k in extra)
        parts.append(f"installed but not recorded: {names} (`pip uninstall {names}`)")
    if missing:
        pins = " ".join("==".join(old[k]) for k in missing)
        parts.append(f"recorded but not installed: {pins} (`pip install {pins}`)")
    return "; ".join(parts)


def record_environment(out: Path, suite: Mapping[str, Any], root: Path) -> None:
    """Write ``versions.txt`` and ``suite.json`` into ``out``; refuse (ConfigError) when ``out``
    already holds results of other package versions or another code revision."""
    out.mkdir(parents=True, exist_ok=True)
    versions = "\n".join(installed_versions()) + "\n"
    info = {
        "suite": dict(suite),
        "revision": code_revision(root),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    versions_path, info_path = out / VERSIONS_NAME, out / SUITE_INFO_NAME
    if versions_path.exists():
        difference = version_difference(versions_path.read_text(), versions, versions_path)
        if difference:
            raise ConfigError(
                f"{out} holds results made with other package versions: {difference}; "
                "or choose another suite.out"
            )
    if info_path.exists():
        recorded = json.loads(info_path.read_text()).get("revision")
        if recorded != info["revision"]:
            raise ConfigError(
                f"{out} holds results of code revision {recorded}, this is {info['revision']}; "
                "run the suite from that revision (e.g. a git worktree) or choose another "
                "suite.out"
            )
    versions_path.write_text(versions)
    info_path.write_text(json.dumps(info, indent=2, default=str) + "\n")
