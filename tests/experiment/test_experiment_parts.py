"""The parts a run is made of: loggers, checkpoints, progress bar and graceful stops."""

from __future__ import annotations

import os
import random
import signal

import numpy as np
import pytest
import torch

from gradmanip.experiment.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from gradmanip.experiment.loggers import RunLogger, check_backends
from gradmanip.experiment.progress import Progress
from gradmanip.experiment.stop_signals import StopRequest
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


def test_unknown_or_missing_backend_is_named():
    with pytest.raises(ValueError, match=r"unknown backend 'mlflow'.*allowed"):
        check_backends(["csv", "mlflow"])


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


def test_stop_request_turns_signals_into_a_flag():
    previous = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert stop.requested is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C aborts at once
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is previous
