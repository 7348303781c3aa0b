"""The gradient driver: per-objective losses -> directions -> strategy -> ``.grad``.

:class:`GradientDriver` runs one backward pass per objective on a shared forward, hands the
directions (or their Gram matrix) to a strategy and writes the combined update into ``.grad``;
:class:`StepResult` is what a step returns; :mod:`gradmanip.driver.flat` maps between parameter
lists and flat vectors.
"""

from gradmanip.driver.flat import ParameterLayout, flat_params, set_flat_params, unflatten
from gradmanip.driver.gradient_driver import GradientDriver
from gradmanip.driver.step_result import StepResult

__all__ = [
    "GradientDriver",
    "ParameterLayout",
    "StepResult",
    "flat_params",
    "set_flat_params",
    "unflatten",
]
