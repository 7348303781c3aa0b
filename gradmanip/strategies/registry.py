"""Build strategies by name: ``make_strategy("soft_switch", cost_limit=25.0, upper_slack=9.0)``."""

from __future__ import annotations

from typing import Any

from gradmanip.strategies.base import Strategy

_REGISTRY: dict[str, type[Strategy]] = {}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Register a Strategy subclass under ``cls.name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"only Strategy subclasses can be registered, got {cls!r}")
    existing = _REGISTRY.get(cls.name)
    redefinition = existing is not None and (existing.__module__, existing.__qualname__) == (
        cls.__module__,
        cls.__qualname__,
    )  # the same class defined again, e.g. a re-run notebook cell
    if existing is not None and existing is not cls and not redefinition:
        raise ValueError(f"strategy name {cls.name!r} is already taken by {existing.__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def available_strategies() -> list[str]:
    """Sorted names accepted by :func:`make_strategy`."""
    return sorted(_REGISTRY)


def strategy_class(name: str) -> type[Strategy]:
    """The class registered under ``name`` (ValueError listing the valid names otherwise)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown strategy {name!r}; available strategies: {', '.join(available_strategies())}"
        ) from None


def make_strategy(name: str, **settings: Any) -> Strategy:
    """Instantiate the strategy registered under ``name`` with its constructor ``settings``."""
    return strategy_class(name)(**settings)
