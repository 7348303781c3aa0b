"""Validation of constructor settings shared by the strategies.

Settings are plain Python numbers or sequences (Hydra-friendly). Per-constraint settings accept a
float (shared by every constraint) or a sequence of K floats (one per constraint).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

PerConstraint = float | Sequence[float]


def constraint_count(**settings: PerConstraint | None) -> int | None:
    """Number of constraints implied by per-constraint settings (None if all are scalars).

    Raises ValueError when two sequences disagree in length.
    """
    count: int | None = None
    first = ""
    for name, value in settings.items():
        if value is None or isinstance(value, (int, float)):
            continue
        length = len(value)
        if length == 0:
            raise ValueError(
                f"{name} is an empty sequence; give a float or one value per constraint"
            )
        if count is None:
            count, first = length, name
        elif length != count:
            raise ValueError(
                f"{name} has {length} values but {first} has {count}; give one value per "
                "constraint in each setting (or a single float shared by all constraints)"
            )
    return count


def per_constraint(value: PerConstraint, name: str, count: int | None) -> torch.Tensor:
    """Setting as a float64 tensor [K] (or [1] when the count is unknown, broadcast later)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Sequence, torch.Tensor)):
        raise TypeError(
            f"{name} must be a float or a sequence of floats, got {type(value).__name__}"
        )
    values = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    if torch.isnan(values).any():
        raise ValueError(f"{name} contains NaN; give real numbers")
    if count is not None and values.numel() == 1:
        values = values.expand(count).clone()
    return values


def check_finite(values: torch.Tensor, name: str) -> None:
    """Reject infinite values where a finite number is required."""
    if not torch.isfinite(values).all():
        raise ValueError(f"{name} must be finite, got {values.tolist()}")


def check_nonnegative(values: torch.Tensor | float, name: str, fix: str = "") -> None:
    """Reject negative values (ValueError naming the setting)."""
    tensor = torch.as_tensor(values, dtype=torch.float64)
    if (tensor < 0).any():
        hint = f"; {fix}" if fix else ""
        raise ValueError(f"{name} must be >= 0, got {tensor.tolist()}{hint}")


def check_bool(value: object, name: str) -> bool:
    """A true bool (``"false"`` or ``1`` would silently read as a truth value)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def check_positive(value: float, name: str) -> None:
    """Reject values <= 0 (and NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def check_unit_interval(value: float, name: str, *, closed_right: bool = False) -> None:
    """Reject values outside [0, 1) (or [0, 1] when closed_right)."""
    upper_ok = value <= 1 if closed_right else value < 1
    if not (value >= 0 and upper_ok):
        bound = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(f"{name} must lie in {bound}, got {value}")


def format_values(values: torch.Tensor) -> str:
    """Compact repr of a per-constraint setting: a float if all equal, else a list."""
    items = values.tolist()
    if len(items) == 1 or all(
        v == items[0] or (math.isnan(v) and math.isnan(items[0])) for v in items
    ):
        return f"{items[0]:g}"
    return "[" + ", ".join(f"{v:g}" for v in items) + "]"


def broadcast(values: torch.Tensor, count: int) -> list[float]:
    """A per-constraint setting [1] or [K] as K Python floats."""
    items = values.tolist()
    return items * count if len(items) == 1 else items


def cost_limits(cost_limit: PerConstraint, count: int | None) -> torch.Tensor:
    """Validated cost limits b_k >= 0 (finite) as a float64 tensor."""
    limit = per_constraint(cost_limit, "cost_limit", count)
    check_finite(limit, "cost_limit")
    check_nonnegative(limit, "cost_limit", "a cost limit is a budget on a non-negative cost")
    return limit
