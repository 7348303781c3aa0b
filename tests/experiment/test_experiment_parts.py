"""The parts a run is made of: loggers, checkpoints, progress bar and graceful stops."""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import random
import signal

import numpy as np
import pytest
import torch
from hydra.core.utils import JobReturn, JobStatus

from gradmanip.experiment.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from gradmanip.experiment.config_checks import (
    ConfigError,
    check_run_dir,
    exit_on_config_error,
    task_parameters,
)
from gradmanip.experiment.exit_status import ExitStatus
from gradmanip.experiment.loggers import RunLogger, check_backends
from gradmanip.experiment.progress import Progress
from gradmanip.experiment.stop_signals import RunStopped, StopRequest, exit_on_stop
from gradmanip.reporting import read_metrics


def test_checkpoint_round_trip_restores_python_and_numpy_rng(tmp_path):
    random.seed(1)
    np.random.seed(1)
    save_checkpoint(tmp_path, {"epoch": 3, "weights": torch.arange(4.0)})
    expected = (random.random(), np.random.rand())
    random.seed(99)
    np.random.seed(99)
    state = load_checkpoint(tmp_path)
    assert state["epoch"] == 3 and torch.equal(state["weights"], torch.arange(4.0))
    assert (random.random(), np.random.rand()) == expected
    assert has_checkpoint(tmp_path)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"epoch": 1})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(tmp_path)["epoch"] == 1  # the previous checkpoint survives


def test_missing_checkpoint_says_how_to_start(tmp_path):
    assert not has_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="resume=false"):
        load_checkpoint(tmp_path)


def test_tensorboard_backend_receives_every_scalar(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = RunLogger(tmp_path, ["csv", "tensorboard"], name="run")
    logger.log({"epoch": 1, "env_steps": 100, "episode_return": 1.5, "kl": float("nan")})
    logger.log({"epoch": 2, "env_steps": 200, "episode_return": 2.5, "kl": 0.01})
    logger.close()
    assert [r["episode_return"] for r in read_metrics(tmp_path)] == [1.5, 2.5]
    events = next(tmp_path.rglob("events.out.tfevents*")).parent
    acc = EventAccumulator(str(events))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("episode_return")] == [(100, 1.5), (200, 2.5)]
    assert [e.step for e in acc.Scalars("kl")] == [200]  # non-finite values are not sent


def test_unknown_or_missing_backend_is_named(monkeypatch):
    with pytest.raises(ConfigError, match=r"unknown backend 'mlflow'.*allowed"):
        check_backends(["csv", "mlflow"])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(
        ConfigError, match=r"'tensorboard' needs the tensorboard package.*gradmanip\[tensorboard\]"
    ):
        check_backends(["csv", "tensorboard"])


def test_progress_counts_steps_and_shows_mode():
    bar = Progress(1000, enabled=True)
    bar.update(
        {
            "env_steps": 400,
            "episode_return": 12.345,
            "episode_cost": float("nan"),
            "strategy/mode": 2.0,
        }
    )
    assert bar.bar.n == 400
    assert bar.bar.postfix == "return=12.35, cost=-, mode=cost"
    bar.close()


def test_progress_shows_the_cost_of_each_constraint():
    bar = Progress(1000, enabled=True)
    metrics = {"env_steps": 400, "episode_return": 3.0, "strategy/mode": 0.0}
    bar.update(metrics | {"episode_cost": 152.5, "episode_cost_0": 12.5, "episode_cost_1": 140})
    assert bar.bar.postfix == "return=3, cost=12.5/140, mode=both"
    bar.close()


def test_progress_shows_the_latest_evaluation_until_the_next():
    bar = Progress(2000, enabled=True)
    metrics = {"episode_return": 3.0, "episode_cost": 1.0}
    bar.update(metrics | {"env_steps": 400, "eval/return": float("nan")})
    assert bar.bar.postfix == "return=3, cost=1"
    bar.update(metrics | {"env_steps": 800, "eval/return": 41.26})
    assert bar.bar.postfix == "return=3, cost=1, eval=41.26"
    bar.update(metrics | {"env_steps": 1200, "eval/return": float("nan")})
    assert bar.bar.postfix == "return=3, cost=1, eval=41.26"
    bar.update(metrics | {"env_steps": 1600, "eval/return": 7.0})
    assert bar.bar.postfix == "return=3, cost=1, eval=7"
    bar.close()


def test_progress_shows_each_epoch_once_with_its_own_values():
    out = io.StringIO()
    bar = Progress(1500, file=out)
    bar.bar.mininterval = 0  # draw at every update
    for epoch in (1, 2, 3):
        bar.update({"env_steps": 500 * epoch, "episode_return": float(epoch), "strategy/mode": 1})
        assert bar.bar.postfix == f"return={epoch}, cost=-, mode=reward"
    bar.close()
    lines = [line for line in out.getvalue().replace("\n", "\r").split("\r") if line]
    shown = [line for line in lines if "step/s" in line and "return=" in line]
    assert shown, lines
    for line in shown:  # every drawn line shows the epoch it counts
        steps = {"500": 1, "1.00k": 2, "1.50k": 3}[line.split("|")[2].split("/")[0].strip()]
        assert f"return={steps}," in line
    finals = [line for line in lines if line.startswith("100%")]
    assert len(finals) == 1 and "return=3," in finals[0]  # the last line is printed once
    assert out.getvalue().endswith("\n")


def test_progress_close_draws_a_state_no_update_has_drawn():
    out = io.StringIO()
    bar = Progress(1000, file=out)
    bar.bar.mininterval = 3600  # updates never draw
    bar.update({"env_steps": 1000, "episode_return": 5.0})
    bar.close()
    lines = [line for line in out.getvalue().replace("\n", "\r").split("\r") if line]
    assert lines[-1].startswith("100%") and "return=5," in lines[-1]


def test_progress_disabled_prints_nothing():
    out = io.StringIO()
    bar = Progress(1000, enabled=False, file=out)
    bar.update({"env_steps": 500, "episode_return": 1.0})
    bar.close()
    assert out.getvalue() == ""


def test_stop_exit_status_is_128_plus_the_signal(capsys):
    assert RunStopped("SIGINT", "stopped").exit_status == 130
    assert RunStopped("SIGTERM", "stopped").exit_status == 143
    copy = pickle.loads(pickle.dumps(RunStopped("SIGTERM", "stopped at epoch 2")))
    assert (copy.exit_status, str(copy)) == (143, "stopped at epoch 2")
    with pytest.raises(SystemExit) as exit_, exit_on_stop():
        raise RunStopped("SIGTERM", "stopped by SIGTERM at epoch 2; continue with resume=true")
    assert exit_.value.code == 143
    assert capsys.readouterr().out == "stopped by SIGTERM at epoch 2; continue with resume=true\n"


def test_config_error_exits_2_with_one_line(capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exit_, exit_on_config_error():
        raise ConfigError("env.cost_limit must be a finite number >= 0, got -5")
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.err == "error: env.cost_limit must be a finite number >= 0, got -5\n"
    assert captured.out == ""
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigError), exit_on_config_error():
        raise ConfigError("with its traceback")


def failed_job(error: Exception) -> JobReturn:
    job = JobReturn(overrides=["seed=0"], status=JobStatus.FAILED)
    job.return_value = error
    return job


def test_failed_sweep_jobs_end_the_sweep_with_their_status(capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    callback = ExitStatus()  # as in a worker process: the sweep was launched elsewhere
    job = failed_job(ConfigError("total_steps must be an integer >= 1, got 0"))
    callback.on_job_end(config=None, job_return=job)
    assert "error: total_steps must be an integer >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        job.return_value  # noqa: B018  (what the sweeper reads in the launching process)
    assert exit_.value.code == 2
    job = failed_job(RunStopped("SIGINT", "stopped by SIGINT at epoch 1"))
    callback.on_job_end(config=None, job_return=job)
    with pytest.raises(SystemExit) as exit_:
        job.return_value  # noqa: B018
    assert exit_.value.code == 130
    other = failed_job(RuntimeError("a bug"))
    callback.on_job_end(config=None, job_return=other)
    with pytest.raises(RuntimeError):
        other.return_value  # noqa: B018  (other failures are Hydra's to report)


def test_run_dir_must_be_writable(tmp_path):
    check_run_dir(tmp_path / "new" / "run")
    assert (tmp_path / "new" / "run").is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"^hydra.sweep.dir: cannot write .*file/run"):
        check_run_dir(tmp_path / "file" / "run", "hydra.sweep.dir")


def test_task_parameters_are_the_tasks_keywords():
    assert task_parameters("SafetyPointVelocity-v0") == [
        "damping",
        "initial_noise",
        "max_episode_steps",
        "speed_threshold",
    ]
    assert task_parameters("SafetyHopper-v4") == [
        "ctrl_cost_weight",
        "max_episode_steps",
        "unhealthy_cost",
    ]


def test_stop_request_turns_signals_into_a_flag():
    previous = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert stop.requested is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C aborts at once
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is previous
