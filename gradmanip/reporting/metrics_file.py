"""One CSV row per epoch, flushed as it is written, plus a small JSON description of the run.

A run directory holds ``metrics.csv`` (every epoch's metrics and strategy diagnostics) and
``run.json`` (task, strategy, algorithm, seed, cost limit and slack band, and the run's resolved
``config``), which is all the plotting and comparison tools read.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

METRICS_NAME = "metrics.csv"
RUN_INFO_NAME = "run.json"


class MetricsFile:
    """Append-only per-epoch CSV log that survives interruption.

    Each row is flushed and ``fsync``-ed, so an interrupted run keeps every finished epoch. Rows
    may omit columns (left empty); a row with new columns rewrites the file once with the wider
    header (atomically). ``truncate_after(epoch)`` drops rows beyond a checkpoint when a run
    resumes, so the resumed run's rows continue the file without duplicates. Rewrites copy the
    kept rows' text as it was written, so a resumed run's file is byte-identical to an
    uninterrupted one's.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / METRICS_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._columns: list[str] | None = None
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as f:
                self._columns = next(csv.reader(f), None)

    def truncate_after(self, epoch: int) -> None:
        """Keep only rows with ``epoch <= epoch`` (used when resuming from a checkpoint)."""
        if self._columns is None:
            return
        self._rewrite([r for r in self._raw_rows() if int(r["epoch"]) <= epoch])

    def _raw_rows(self) -> list[dict[str, str]]:
        """The file's rows as written: each cell's text, unparsed."""
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        """Atomically replace the file with the header of ``self._columns`` and ``rows``."""
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: v for k, v in row.items() if k in self._columns})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one epoch's metrics (must contain ``"epoch"``)."""
        if "epoch" not in row:
            raise KeyError("metrics row needs an 'epoch' entry")
        new_file = self._columns is None
        if new_file:
            self._columns = list(row)
        unknown = [k for k in row if k not in self._columns]
        if unknown:
            rows = self._raw_rows()
            self._columns += unknown
            self._rewrite(rows)
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._columns)
            if new_file:
                writer.writeheader()
            writer.writerow({k: _fmt(v) for k, v in row.items()})
            f.flush()
            os.fsync(f.fileno())


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "item"):
        return _fmt(value.item())
    return value


def _parse(text: str | None) -> float | str:
    if text is None or text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        return text


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """All rows of a run's ``metrics.csv``, numbers parsed as floats (``epoch`` as int)."""
    path = Path(run_dir) / METRICS_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run directory?")
    with path.open(newline="") as f:
        rows = [{k: _parse(v) for k, v in r.items()} for r in csv.DictReader(f)]
    for r in rows:
        r["epoch"] = int(r["epoch"])
    return rows


def write_run_info(run_dir: str | os.PathLike, info: Mapping[str, Any]) -> None:
    """Write ``run.json`` (task, strategy, algo, seed, cost_limit, slack band, config, ...).

    OmegaConf values (e.g. a list of cost limits) are written as plain JSON lists and objects.
    """
    path = Path(run_dir) / RUN_INFO_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(info), indent=2, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    from omegaconf import OmegaConf

    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return str(value)


def read_run_info(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``run.json`` (infinite slack bounds round-trip as ``Infinity``)."""
    path = Path(run_dir) / RUN_INFO_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run directory?")
    return json.loads(path.read_text())
