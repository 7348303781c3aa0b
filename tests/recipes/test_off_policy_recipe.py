"""The recipe with the off-policy base (``algo=sac``) on the toy task: outputs, exact resume
after SIGKILL (replay buffer and random generators in the checkpoint), configuration errors."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from recipe_runs import (
    RECIPES,
    compose_cfg,
    csv_cells_without_timings,
    finish,
    run_recipe,
    sigkill_then_resume,
)

from gradmanip.experiment.config_checks import ConfigError
from gradmanip.reporting import read_metrics, read_run_info

sys.path.insert(0, str(RECIPES))
import ppo_softswitch  # noqa: E402

SMALL_SAC = [
    "algo=sac",
    "hidden=[32,32]",
    "algo.batch_size=32",
    "algo.buffer_size=5000",
    "algo.warmup_steps=200",
    "algo.updates_per_step=0.5",
]


def test_sac_recipe_writes_every_output(tmp_path):
    finish(run_recipe("ppo_softswitch.py", tmp_path, *SMALL_SAC, "total_steps=1000"))
    rows = read_metrics(tmp_path)
    assert [r["env_steps"] for r in rows] == [500, 1000]
    assert [r["updates"] for r in rows] == [150, 250]  # 0.5 per step after 200 warm-up steps
    for column in (
        "episode_return",
        "episode_cost",
        "episode_length",
        "loss/reward",
        "loss/cost",
        "loss/qvalue",
        "alpha",
        "strategy/mode",
    ):
        assert all(math.isfinite(r[column]) for r in rows), column
    info = read_run_info(tmp_path)
    assert (info["algo"], info["strategy"]) == ("sac", "soft_switch")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    assert state["epoch"] == 2 and state["replay_buffer"]["_storage"]["_len"] == 1000


def test_sac_sigkill_then_resume_reproduces_the_uninterrupted_run(tmp_path):
    budget = [*SMALL_SAC, "total_steps=1800", "checkpoint_every=1", "strategy=lagrangian"]
    budget += ["algo.updates_per_step=0.25", "steps_per_epoch=450"]  # 100-step episodes run on
    killed = sigkill_then_resume(tmp_path, budget, wait=240)
    cells = csv_cells_without_timings(killed / "metrics.csv")
    assert len(cells) == 6  # header, 4 epochs, the final newline
    assert [row[1] for row in cells[1:5]] == [b"450", b"900", b"1350", b"1800"]
    assert cells == csv_cells_without_timings(tmp_path / "whole" / "metrics.csv")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "algo.batch_size=600 algo.buffer_size=500",
            r"algo.batch_size \(600\) is larger than algo.buffer_size \(500\)",
        ),
        (
            "algo.warmup_steps=1000 total_steps=1000",
            r"algo.warmup_steps \(1000\) must be smaller than total_steps \(1000\)",
        ),
        ("normalize_obs=true", "normalize_obs: algo=sac stores raw observations"),
        ("num_workers=2", "num_workers / envs_per_worker: algo=sac steps one environment"),
        ("algo.updates_per_step=0", "algo.updates_per_step must be a number > 0"),
        ("algo.sampler=prioritized", "algo.sampler must be one of random, without_replacement"),
        ("algo.cost_window=0", "algo.cost_window must be an integer >= 1"),
        ("algo.base.tau=0", r"algo.base: tau must be a number in \(0.0, 1.0\], got 0.0"),
        ("algo.base.lr=-1", "algo.base: lr must be a finite number > 0.0, got -1.0"),
    ],
)
def test_bad_sac_settings_fail_before_training(tmp_path, override, message):
    cfg = compose_cfg("algo=sac", "total_steps=1000", "algo.warmup_steps=200", *override.split())
    with pytest.raises(ConfigError, match=message):
        ppo_softswitch.train(cfg, tmp_path)
    assert not (tmp_path / "metrics.csv").exists()


def test_sac_config_error_is_one_error_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(RECIPES / "ppo_softswitch.py"),
            "algo=sac",
            "total_steps=5000",
            "algo.buffer_size=100",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: algo.batch_size (256) is larger than algo.buffer_size (100): lower "
        "algo.batch_size or raise algo.buffer_size"
    )
