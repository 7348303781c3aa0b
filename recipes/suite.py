"""Run a benchmark suite: tasks x strategies x seeds at a budget, resumable across sittings.

    python recipes/suite.py suite=velocity                 # run, or continue, the suite
    python recipes/suite.py suite=velocity action=status   # what is done, partial, pending

Each group of the suite is one multirun of the training recipe with ``resume=true`` into fixed
run directories ``<out>/<task>/<algo>-<strategy>/seed<seed>``: finished runs are skipped,
interrupted ones continue from their last checkpoint. ``gradmanip-compare <out>`` then renders
the table and the plots.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from gradmanip.experiment.config_checks import ConfigError, exit_on_config_error
from gradmanip.experiment.suite import LAUNCHERS, groups_of, record_environment, status_table

RECIPES = Path(__file__).resolve().parent


def run_suite(cfg: DictConfig) -> int:
    """Check the suite, show its status, then run every unfinished group; the exit status."""
    suite = OmegaConf.to_container(cfg.suite, resolve=True)
    if cfg.action not in ("run", "status"):
        raise ConfigError(f"action must be run or status, got {cfg.action!r}")
    if cfg.launcher not in LAUNCHERS:
        raise ConfigError(f"launcher must be one of {LAUNCHERS}, got {cfg.launcher!r}")
    jobs = cfg.jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1, got {jobs!r}")
    recipe = RECIPES / suite["recipe"]
    if not recipe.exists():
        raise ConfigError(f"suite.recipe: {recipe} does not exist")
    groups = groups_of(suite)
    out = Path(suite["out"]).resolve()
    table = status_table(groups, out)
    counts = Counter(state for _, state in table)
    print(
        f"suite {suite['name']} in {out}: {len(table)} runs, "
        + ", ".join(f"{counts[s]} {s}" for s in ("done", "partial", "pending"))
    )
    if cfg.action == "status":
        for run, state in table:
            print(f"  {state:8s} {run.directory(out).relative_to(out)}  ({run.total_steps} steps)")
        return 0
    record_environment(out, suite, RECIPES.parent)
    for index, group in enumerate(groups):
        states = [state for run, state in table if run in set(group.runs())]
        if all(state == "done" for state in states):
            continue
        print(f"group {index}: {len(states)} runs ({states.count('done')} already done)")
        command = group.command(recipe, out, cfg.launcher, jobs)
        result = subprocess.run(command, cwd=RECIPES.parent)
        if result.returncode:
            return result.returncode
    return 0


@hydra.main(config_path="config", config_name="suite", version_base=None)
def main(cfg: DictConfig) -> None:
    with exit_on_config_error():
        status = run_suite(cfg)
    sys.exit(status)


if __name__ == "__main__":
    main()
