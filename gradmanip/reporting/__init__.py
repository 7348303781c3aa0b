"""Run directories: per-epoch metrics, training-curve plots, cross-run comparison tables and the
results page."""

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
    "write_results_page",
    "write_run_info",
]


def __getattr__(name: str) -> Any:
    # Imported on first use, so ``python -m gradmanip.reporting.compare`` runs it cleanly.
    if name == "compare_runs":
        from gradmanip.reporting.compare import compare_runs

        return compare_runs
    if name == "write_results_page":
        from gradmanip.reporting.results_page import write_results_page

        return write_results_page
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
