"""Run directories: per-epoch metrics, training-curve plots and cross-run comparison tables."""

from typing import Any

from gradmanip.reporting.curves import plot_run
from gradmanip.reporting.metrics_file import (
    MetricsFile,
    read_metrics,
    read_run_info,
    write_run_info,
)

__all__ = [
    "MetricsFile",
    "compare_runs",
    "plot_run",
    "read_metrics",
    "read_run_info",
    "write_run_info",
]


def __getattr__(name: str) -> Any:
    # Imported on first use, so ``python -m gradmanip.reporting.compare`` runs it cleanly.
    if name == "compare_runs":
        from gradmanip.reporting.compare import compare_runs

        return compare_runs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
