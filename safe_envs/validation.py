"""Parameter checks shared by the tasks: every check names the parameter and how to fix it."""

from __future__ import annotations

import math
from numbers import Real


def check_real(name: str, value: object, *, minimum: float | None = None) -> float:
    """Return ``value`` as a finite float, or raise ``ValueError`` naming ``name``.

    ``minimum`` (inclusive) is the smallest accepted value, if any.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r} ({type(value).__name__}).")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number!r}.")
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number!r}.")
    return number


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as a positive int, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")
    return str(value)
