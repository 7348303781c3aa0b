"""Deterministic evaluation during training (``eval_every``): its columns, on the right epochs,
and training left exactly as it is without it, on the on-policy and the off-policy base."""

from __future__ import annotations

import math
import sys

import pytest
from recipe_runs import RECIPES, compose_cfg, learning_columns

from gradmanip.experiment.config_checks import ConfigError
from gradmanip.reporting import read_metrics

sys.path.insert(0, str(RECIPES))
import ppo_softswitch  # noqa: E402

SAC = ["algo=sac", "hidden=[32,32]", "algo.batch_size=32", "algo.warmup_steps=200"]
EVAL = ("eval/return", "eval/cost", "eval/length")


def training_columns(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("eval/")} for r in rows]


@pytest.mark.parametrize("base", [[], SAC], ids=["ppo", "sac"])
def test_evaluation_every_second_epoch_leaves_training_unchanged(tmp_path, base):
    budget = [*base, "total_steps=1500", "eval_episodes=2"]
    ppo_softswitch.train(compose_cfg(*budget, "eval_every=2"), tmp_path / "evaluated")
    ppo_softswitch.train(compose_cfg(*budget), tmp_path / "plain")
    evaluated = read_metrics(tmp_path / "evaluated")
    plain = read_metrics(tmp_path / "plain")
    assert training_columns(learning_columns(evaluated)) == learning_columns(plain)
    assert not any(k.startswith("eval/") for k in plain[0])
    assert [all(math.isfinite(r[k]) for k in EVAL) for r in evaluated] == [False, True, False]
    assert all(math.isnan(r[k]) for r in (evaluated[0], evaluated[2]) for k in EVAL)
    assert evaluated[1]["eval/length"] == 100  # the toy task's episodes, run to their end
    assert evaluated[1]["eval/cost"] >= 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval_every=-1", r"eval_every must be an integer >= 0, got -1"),
        ("eval_every=1.5", r"eval_every must be an integer >= 0, got 1.5"),
        (
            "eval_every=2 eval_episodes=0",
            r"eval_every evaluates eval_episodes episodes during training, but "
            r"eval_episodes=0: set eval_episodes >= 1, or eval_every=0",
        ),
    ],
)
def test_bad_evaluation_settings_fail_before_training(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        ppo_softswitch.train(compose_cfg(*override.split()), tmp_path)
    assert not (tmp_path / "metrics.csv").exists()


def test_the_sac_preset_evaluates_during_training():
    # off-policy runs are reported by their test episodes (the results' test columns)
    assert compose_cfg("algo=sac").eval_every == 5
    assert compose_cfg().eval_every == 0  # the on-policy presets: only at the end
