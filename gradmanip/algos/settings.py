"""Validation of the base algorithms' settings (ValueError naming the setting)."""

from __future__ import annotations

import math
from typing import Any


def check_int(name: str, value: Any, minimum: int) -> int:
    """An integer >= ``minimum`` (a whole float such as ``1e3`` is accepted)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(
    name: str, value: Any, low: float, high: float = math.inf, *, open_low: bool = True
) -> float:
    """A finite number in ``(low, high]`` (``[low, high]`` with ``open_low=False``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    low_ok = value > low if open_low else value >= low
    if not (low_ok and value <= high and math.isfinite(value)):
        if math.isinf(high):
            wanted = f"a finite number {'>' if open_low else '>='} {low}"
        else:
            wanted = f"a number in {'(' if open_low else '['}{low}, {high}]"
        raise ValueError(f"{name} must be {wanted}, got {value}")
    return value
