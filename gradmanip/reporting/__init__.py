"""Run directories: per-epoch metrics, training-curve plots and cross-run comparison tables."""

from gradmanip.reporting.compare import compare_runs
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
